package fn

import (
	"reflect"
	"sync"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/resource"
)

// A Desired composed resource, converted and ready to send, with its row and
// what its readiness compares the observed object with.
type Desired struct {
	Name   resource.Name
	Struct *structpb.Struct
	Kind   Kind
	Want   Want
}

// Build composes p and converts every object: the pure part of RunFunction,
// which the memo wraps.
func Build(p Params) ([]Desired, error) {
	cs := Compose(p)
	out := make([]Desired, 0, len(cs))
	for _, c := range cs {
		cd, err := ToComposed(c.Object)
		if err != nil {
			return nil, errors.Wrapf(err, "cannot compose %s", c.Name)
		}
		s, err := structpb.NewStruct(cd.Object)
		if err != nil {
			return nil, errors.Wrapf(err, "cannot compose %s", c.Name)
		}
		out = append(out, Desired{Name: c.Name, Struct: s, Kind: c.Kind, Want: WantOf(p.Replicas, s)})
	}
	return out, nil
}

// A Database is reconciled every poll interval and on every change of what it
// composed, almost always with the same inputs. Build is a pure function of
// Params, so equal Params give equal results: the memo keeps, per Database,
// the last Params it saw and what Build made of them.
//
// Results are shared between responses and never mutated: the function
// writes readiness into a new fnv1.Resource around each struct, and gRPC
// only reads them to marshal.
type memo struct {
	build func(Params) ([]Desired, error)
	max   int

	mu sync.Mutex
	m  map[string]memoized // namespace/name -> last build
}

type memoized struct {
	p   Params
	out []Desired
}

// memoize wraps build, remembering at most size Databases.
func memoize(size int, build func(Params) ([]Desired, error)) *memo {
	return &memo{build: build, max: size, m: map[string]memoized{}}
}

// Build returns build(p), from memory when the Database's last call had
// exactly these Params.
func (m *memo) Build(p Params) ([]Desired, error) {
	id := p.Namespace + "/" + p.Name
	m.mu.Lock()
	e, ok := m.m[id]
	m.mu.Unlock()
	if ok && sameParams(e.p, p) {
		return e.out, nil
	}

	out, err := m.build(p)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if _, ok := m.m[id]; !ok && len(m.m) >= m.max {
		for k := range m.m { // Evict one at random.
			delete(m.m, k)
			break
		}
	}
	m.m[id] = memoized{p: p, out: out}
	m.mu.Unlock()
	return out, nil
}

// sameParams tells equal Params apart from others. Params hold the engine's
// row of the engine table, whose Config and PodArgs are functions, and
// functions are never deeply equal: the row is the same when the engine is.
func sameParams(a, b Params) bool {
	if a.names.Engine != b.names.Engine {
		return false
	}
	a.Engine.Config, b.Engine.Config = nil, nil
	a.Engine.PodArgs, b.Engine.PodArgs = nil, nil
	a.Engine.Files, b.Engine.Files = nil, nil
	return reflect.DeepEqual(a, b)
}
