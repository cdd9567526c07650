// Command promql parses PromQL expressions with Prometheus' own parser, the
// one promtool and Prometheus use, and prints the metric names each selects.
// It reads a JSON array of expressions on stdin and writes a JSON array of
// {"expr", "metrics"} or {"expr", "error"} in the same order; it exits 1 when
// an expression does not parse. test/ runs it on the composed alerts and
// dashboard panels.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "cannot read a JSON array of expressions:", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	out := make([]result, 0, len(exprs))
	failed := false
	for _, e := range exprs {
		r := result{Expr: e}
		x, err := p.ParseExpr(e)
		if err != nil {
			r.Error, failed = err.Error(), true
			out = append(out, r)
			continue
		}
		parser.Inspect(x, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name == "" {
				r.Error, failed = "a selector without a metric name: "+vs.String(), true
			} else if !slices.Contains(r.Metrics, name) {
				r.Metrics = append(r.Metrics, name)
			}
			return nil
		})
		slices.Sort(r.Metrics)
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
