package fn

import (
	"crypto/sha256"
	"encoding/json"
	"sync"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/resource"
)

// A Database is reconciled every poll interval and on every change of what it
// composed, almost always with the same inputs. The builders are pure
// functions of Params, so equal Params give equal composed resources: the
// cache keeps, per Database, the converted resources of the last Params it
// saw, and skips building and converting them again.
//
// Cached structs are shared between responses and never mutated: the
// function writes readiness into a new fnv1.Resource around them, and gRPC
// only reads them to marshal.
type cache struct {
	mu  sync.Mutex
	max int
	m   map[string]cached // namespace/name -> last composition
}

type cached struct {
	key       [sha256.Size]byte
	resources []composedStruct
}

// A composedStruct is a composed resource, ready to send.
type composedStruct struct {
	Name   resource.Name
	Struct *structpb.Struct
}

func newCache(max int) *cache { return &cache{max: max, m: map[string]cached{}} }

// Composed returns the composed resources for p, from the cache when it holds
// them for exactly these Params.
func (c *cache) Composed(p Params) ([]composedStruct, error) {
	j, err := json.Marshal(p)
	if err != nil {
		return nil, errors.Wrap(err, "cannot digest parameters")
	}
	key := sha256.Sum256(j)
	id := p.Namespace + "/" + p.Name

	if c != nil {
		c.mu.Lock()
		e, ok := c.m[id]
		c.mu.Unlock()
		if ok && e.key == key {
			return e.resources, nil
		}
	}

	out := make([]composedStruct, 0, 8)
	for _, o := range Compose(p) {
		cd, err := ToComposed(o.Object)
		if err != nil {
			return nil, errors.Wrapf(err, "cannot compose %s", o.Name)
		}
		s, err := structpb.NewStruct(cd.Object)
		if err != nil {
			return nil, errors.Wrapf(err, "cannot compose %s", o.Name)
		}
		out = append(out, composedStruct{Name: o.Name, Struct: s})
	}

	if c != nil {
		c.mu.Lock()
		if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
			for k := range c.m { // Evict one at random.
				delete(c.m, k)
				break
			}
		}
		c.m[id] = cached{key: key, resources: out}
		c.mu.Unlock()
	}
	return out, nil
}
