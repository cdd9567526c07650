// Command function serves dbplane's composition function over gRPC.
package main

import (
	"github.com/alecthomas/kong"
	grpcprometheus "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossplane/function-sdk-go"

	"github.com/dbplane/dbplane/fn"
)

// CLI of the function.
type CLI struct {
	Debug bool `help:"Emit debug logs in addition to info logs." short:"d"`

	Network            string `default:"tcp"   help:"Network on which to listen for gRPC connections."`
	Address            string `default:":9443" help:"Address at which to listen for gRPC connections."`
	TLSCertsDir        string `env:"TLS_SERVER_CERTS_DIR" help:"Directory containing server certs (tls.key, tls.crt) and the CA used to verify client certificates (ca.crt)"`
	Insecure           bool   `help:"Run without mTLS credentials. If you supply this flag --tls-certs-dir will be ignored."`
	MaxRecvMessageSize int    `default:"4" help:"Maximum size of received messages in MB."`
	MetricsAddress     string `default:":8080" env:"METRICS_BIND_ADDRESS" help:"Address of the Prometheus metrics endpoint (/metrics); empty turns it off."`
}

// Run the function.
func (c *CLI) Run() error {
	log, err := function.NewLogger(c.Debug)
	if err != nil {
		return err
	}
	// function-sdk-go serves the default registry: the Go and process
	// collectors, its gRPC server metrics (RunFunction calls, codes and,
	// with the histogram, durations) and ours.
	m := fn.NewMetrics()
	if err := prometheus.Register(m); err != nil {
		return err
	}
	return function.Serve(fn.New(log, fn.WithMetrics(m)),
		function.Listen(c.Network, c.Address),
		function.MTLSCertificates(c.TLSCertsDir),
		function.Insecure(c.Insecure),
		function.MaxRecvMessageSize(c.MaxRecvMessageSize*1024*1024),
		function.WithMetricsServer(c.MetricsAddress),
		function.WithMetricsServerOpts(grpcprometheus.WithServerHandlingTimeHistogram()))
}

func main() {
	ctx := kong.Parse(&CLI{}, kong.Description("dbplane's composition function: MySQL and PostgreSQL Databases."))
	ctx.FatalIfErrorf(ctx.Run())
}
