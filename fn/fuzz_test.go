package fn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// FuzzRunFunction composes arbitrary Databases against arbitrary observed
// composed and required resources: spec is the Database's spec as JSON,
// observed a JSON object of composed resource name to object, required one
// of requirement name to a list of objects; edit and value edit one leaf of
// spec or observed (edit 0 edits nothing), so that the byte mutator's
// changes to a short value reach every field as a well-formed JSON value.
// It calls the script RunFunction
// wraps, without its recover, so that a panic fails the fuzzer, and checks
// what must hold for any input: no error (a bad input is a Fatal result),
// the memo answers what an uncached Function answers, and without a Fatal
// result every composed object is named, no password leaves the Secret and
// the phase is one of the phases.
//
// Seeds: every example Database against nothing observed and against the
// render goldens' observed fixtures, and a restore in progress. Run it longer
// with make fuzz FUZZTIME=10m.
func FuzzRunFunction(f *testing.F) {
	examples, err := filepath.Glob(filepath.Join("..", "examples", "databases", "*.yaml"))
	if err != nil || len(examples) == 0 {
		f.Fatalf("no example Databases: %v", err)
	}
	fixtures, err := filepath.Glob(filepath.Join("..", "test", "testdata", "observed", "*.yaml"))
	if err != nil || len(fixtures) == 0 {
		f.Fatalf("no observed fixtures: %v", err)
	}
	for _, e := range examples {
		spec := exampleSpec(f, e)
		f.Add(spec, []byte(`{}`), []byte(`{}`), uint16(0), "")
		// Every leaf of the spec edited to its own value: a start from
		// which one mutation of a short value changes one field.
		var s any
		if err := json.Unmarshal(spec, &s); err != nil {
			f.Fatal(err)
		}
		for i, l := range leaves(s, func(any) {}, nil) {
			j, err := json.Marshal(l.value)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(spec, []byte(`{}`), []byte(`{}`), uint16(i+1), string(j))
		}
		for _, o := range fixtures {
			f.Add(spec, observedFixture(f, o), []byte(`{}`), uint16(0), "")
		}
	}
	// Two unreadable objects: the same one must be reported every call.
	f.Add([]byte(pgProd), []byte(`{"secret":{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"},"data":{}},"backup-cronjob":{"apiVersion":"batch/v1","kind":"CronJob","spec":"x"}}`), []byte(`{}`), uint16(0), "")
	// A restore whose Job is running, with a failed backup.
	f.Add([]byte(`{"type":"postgresql","version":"16","replicas":2,"environment":"staging","storage":{"size":"1Gi"},"backup":{"enabled":true},"restore":{"from":"orders-old"}}`),
		[]byte(`{"secret":`+secretJSON("observed-password-0123456789")+`,"statefulset":`+stsJSON(2, 1, "1Gi")+`,"restore-job":{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-restore"},"status":{"active":1}}}`),
		[]byte(`{"restore-source":[`+xr("orders-old", pgProd)+`],"backup-jobs":[{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-backup-1","creationTimestamp":"2026-11-30T02:00:00Z"},"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded"}]}}]}`), uint16(0), "")

	gen := func() (string, error) { return testPassword, nil }
	cached := New(logging.NewNopLogger(), WithPasswordGenerator(gen), WithIssuer(fixedIssuer{}))
	uncached := New(logging.NewNopLogger(), WithPasswordGenerator(gen), WithIssuer(fixedIssuer{}), WithoutCache())

	f.Fuzz(func(t *testing.T, spec, observed, required []byte, edit uint16, value string) {
		r1, ok := fuzzRequest(spec, observed, required, edit, value)
		if !ok {
			t.Skip("not a JSON spec and JSON objects of objects")
		}
		r2 := proto.Clone(r1).(*fnv1.RunFunctionRequest) //nolint:forcetypeassert // Clone returns its argument's type.

		got, err := cached.compose(t.Context(), r1)
		if err != nil {
			t.Fatalf("RunFunction(...): want a Fatal result, not an error: %v", err)
		}
		want, err := uncached.compose(t.Context(), r2)
		if err != nil {
			t.Fatalf("RunFunction(...) uncached: %v", err)
		}
		if !proto.Equal(want, got) {
			t.Fatalf("RunFunction(...): the memo answered otherwise than an uncached Function:\nuncached: %s\ncached: %s", protojson.Format(want), protojson.Format(got))
		}
		if slices.ContainsFunc(got.GetResults(), func(r *fnv1.Result) bool { return r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL }) {
			return
		}

		// The password is the generated one or the observed Secret's: the
		// composed Secret says which.
		pw := []byte(testPassword)
		d, _ := got.GetDesired().GetResources()[string(rnSecret)].GetResource().AsMap()["data"].(map[string]any)
		if b, err := base64.StdEncoding.DecodeString(fmt.Sprint(d[keyPassword])); err == nil && len(b) >= 8 {
			pw = b
		}
		secrets := [][]byte{pw, []byte(base64.StdEncoding.EncodeToString(pw))}
		if x, _ := got.GetDesired().GetComposite().GetResource().MarshalJSON(); bytes.Contains(x, pw) {
			t.Errorf("RunFunction(...): the password appears in the Database")
		}
		for n, r := range got.GetDesired().GetResources() {
			m := r.GetResource().AsMap()
			md, _ := m["metadata"].(map[string]any)
			if m["apiVersion"] == nil || m["kind"] == nil || md["name"] == nil {
				t.Errorf("RunFunction(...): composed resource %q has no apiVersion, kind or name", n)
			}
			j, _ := r.GetResource().MarshalJSON()
			if n != string(rnTLS) && n != string(rnCA) {
				for _, k := range [][]byte{testCerts().Key, testCerts().CAKey} {
					if bytes.Contains(j, []byte(base64.StdEncoding.EncodeToString(k))) || bytes.Contains(j, k[40:80]) {
						t.Errorf("RunFunction(...): a private key appears in %q, outside the TLS Secrets", n)
					}
				}
			}
			if n == string(rnSecret) {
				continue
			}
			for _, s := range secrets {
				if bytes.Contains(j, s) {
					t.Errorf("RunFunction(...): the password appears in %q, outside the Secret", n)
				}
			}
		}
		st, _ := got.GetDesired().GetComposite().GetResource().AsMap()["status"].(map[string]any)
		if ph, _ := st["phase"].(string); !slices.Contains([]v1.Phase{v1.PhasePending, v1.PhaseCreating, v1.PhasePartiallyReady, v1.PhaseReady, v1.PhaseFailed}, v1.Phase(ph)) {
			t.Errorf("RunFunction(...): status.phase %q is not a phase", ph)
		}
	})
}

// fuzzRequest is a request for a Database with spec in team-a, observing
// observed and answering required, with leaf number edit (counted from 1, in key order
// of spec then observed) set to value: JSON if it parses, else a string. ok
// is false when the bytes are not the JSON that can be.
func fuzzRequest(spec, observed, required []byte, edit uint16, value string) (*fnv1.RunFunctionRequest, bool) {
	xr := map[string]any{}
	if err := json.Unmarshal([]byte(`{"apiVersion":"database.example.com/v1","kind":"Database","metadata":{"name":"orders","namespace":"team-a"}}`), &xr); err != nil {
		return nil, false
	}
	var s any
	if err := json.Unmarshal(spec, &s); err != nil {
		return nil, false
	}
	xr["spec"] = s
	ocds := map[string]map[string]any{}
	if err := json.Unmarshal(observed, &ocds); err != nil {
		return nil, false
	}
	if edit > 0 {
		var v any = value
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			v = value
		}
		ls := leaves(xr["spec"], func(v any) { xr["spec"] = v }, nil)
		for _, n := range slices.Sorted(maps.Keys(ocds)) {
			ls = leaves(ocds[n], nil, ls)
		}
		if len(ls) > 0 {
			ls[int(edit-1)%len(ls)].set(v)
		}
	}
	oxr, err := structpb.NewStruct(xr)
	if err != nil {
		return nil, false
	}
	r := &fnv1.RunFunctionRequest{
		Meta:     &fnv1.RequestMeta{Tag: "fuzz", Capabilities: crossplaneV2},
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: oxr}, Resources: map[string]*fnv1.Resource{}},
	}
	for n, o := range ocds {
		st, err := structpb.NewStruct(o)
		if err != nil {
			return nil, false
		}
		r.Observed.Resources[n] = &fnv1.Resource{Resource: st}
	}
	rrs := map[string][]map[string]any{}
	if err := json.Unmarshal(required, &rrs); err != nil {
		return nil, false
	}
	for n, os := range rrs {
		items := make([]*fnv1.Resource, 0, len(os))
		for _, o := range os {
			st, err := structpb.NewStruct(o)
			if err != nil {
				return nil, false
			}
			items = append(items, &fnv1.Resource{Resource: st})
		}
		if r.RequiredResources == nil {
			r.RequiredResources = map[string]*fnv1.Resources{}
		}
		r.RequiredResources[n] = &fnv1.Resources{Items: items}
	}
	return r, true
}

// A leaf of decoded JSON: its value and how to replace it.
type leaf struct {
	value any
	set   func(any)
}

// leaves appends every leaf of v, in key order: set replaces v itself in
// its parent (nil: v cannot be replaced).
func leaves(v any, set func(any), ls []leaf) []leaf {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			ls = leaves(t[k], func(v any) { t[k] = v }, ls)
		}
	case []any:
		for i := range t {
			ls = leaves(t[i], func(v any) { t[i] = v }, ls)
		}
	default:
		if set != nil {
			ls = append(ls, leaf{value: v, set: set})
		}
	}
	return ls
}

// exampleSpec is the spec of an example Database, as JSON.
func exampleSpec(f *testing.F, file string) []byte {
	f.Helper()
	b, err := os.ReadFile(file) //nolint:gosec // A file of the repository's examples.
	if err != nil {
		f.Fatal(err)
	}
	db := map[string]any{}
	if err := yaml.Unmarshal(b, &db); err != nil {
		f.Fatalf("%s: %v", file, err)
	}
	j, err := json.Marshal(db["spec"])
	if err != nil {
		f.Fatal(err)
	}
	return j
}

// observedFixture reads a --observed-resources file of the render goldens
// into a JSON object of composed resource name to object.
func observedFixture(f *testing.F, file string) []byte {
	f.Helper()
	b, err := os.ReadFile(file) //nolint:gosec // A file of the repository's test data.
	if err != nil {
		f.Fatal(err)
	}
	out := map[string]any{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		o := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		md, _ := o["metadata"].(map[string]any)
		an, _ := md["annotations"].(map[string]any)
		n, _ := an["crossplane.io/composition-resource-name"].(string)
		if n == "" {
			f.Fatalf("%s: an object without a composition resource name", file)
		}
		out[n] = o
	}
	j, err := json.Marshal(out)
	if err != nil {
		f.Fatal(err)
	}
	return j
}
