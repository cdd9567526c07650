package fn

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"reflect"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/resource"
)

// Kinds is the table of what a Database composes, a row per composed
// resource (for SQL logins, a row for the family of them). Compose, Observe,
// readiness and the RBAC test all read it: adding a composed kind is adding
// a row, and a test fails when the row has no readiness or Crossplane may
// not compose its kind.
var Kinds = []Kind{
	{Name: rnSecret, Build: one(Secret), Observe: observeSecret, Ready: exists},
	{Name: rnCA, When: selfIssued, Build: one(CASecret), Observe: observeCA, Ready: exists},
	{Name: rnTLS, When: selfIssued, Build: one(TLSSecret), Observe: observeTLS, Ready: exists},
	{Name: rnCertificate, When: certManager, Build: one(Certificate), Observe: observeReadyCondition, Ready: readyCondition},
	{Name: rnConfigMap, Build: one(ConfigMap), Ready: exists},
	{Name: rnHeadlessService, Build: one(HeadlessService), Ready: exists},
	{Name: rnStatefulSet, Build: one(StatefulSet), Observe: observeStatefulSet, Ready: rolledOut},
	{Name: rnNetworkPolicy, Build: one(NetworkPolicy), Ready: exists},
	{Name: rnService, When: func(p Params) bool { return p.ComposeService }, Build: one(Service), Ready: exists},
	{Name: rnReadOnlyService, When: func(p Params) bool { return p.Replicated && p.ComposeService }, Build: one(ReadOnlyService), Ready: exists},
	{Name: rnRestoreJob, When: func(p Params) bool { return p.ComposeRestoreJob }, Build: one(RestoreJob),
		Observe: decodeTo(func(o *Observed) **batchv1.Job { return &o.RestoreJob }), Ready: restoreCompleted},
	{Name: rnProviderConfig, When: sqlUsers, Build: one(ProviderConfig), Ready: exists},
	{Name: rnUserPrefix, When: sqlUsers, Build: each(func(p Params) []login { return p.Logins }, SQLUser),
		Observe: observeReadyCondition, Ready: readyCondition},
	{Name: rnAutoscaler, When: func(p Params) bool { return p.Autoscaling != nil }, Build: one(HorizontalPodAutoscaler), Ready: exists,
		Observe: decodeTo(func(o *Observed) **autoscalingv2.HorizontalPodAutoscaler { return &o.Autoscaler })},
	{Name: rnReplication, When: func(p Params) bool { return p.Replicated && p.SQLUsers }, Build: one(Replication),
		Observe: observeReplication, Ready: readyCondition},
	{Name: rnDisruption, When: func(p Params) bool { return p.Profile.DisruptionBudget && p.Replicas > 1 }, Build: one(PodDisruptionBudget), Ready: exists},
	{Name: rnBackupVolume, When: Params.ComposeBackupVolume, Build: one(BackupVolume),
		Observe: decodeTo(func(o *Observed) **corev1.PersistentVolumeClaim { return &o.BackupVolume }), Ready: exists},
	{Name: rnBackupCronJob, When: Params.ComposeBackupCronJob, Build: one(BackupCronJob),
		Observe: decodeTo(func(o *Observed) **batchv1.CronJob { return &o.CronJob }), Ready: exists},
	{Name: rnBackupNowJob, When: Params.ComposeBackupNow, Build: each(backupTokens, BackupNowJob),
		Observe: decodeTo(func(o *Observed) **batchv1.Job { return &o.BackupNowJob }), Ready: exists},
	{Name: rnVerifyCronJob, When: Params.ComposeVerify, Build: one(VerifyCronJob), Ready: exists},
	{Name: rnDashboard, When: func(p Params) bool { return p.Metrics }, Build: one(Dashboard), Ready: exists},
	{Name: rnPodMonitor, When: operator, Build: one(PodMonitor), Ready: exists},
	{Name: rnPrometheusRule, When: operator, Build: one(PrometheusRule), Ready: exists},
}

// A Kind is one row of Kinds.
type Kind struct {
	// Name is the composed resource name, which must never change between
	// calls (a renamed entry is deleted and created again); for a family
	// built by each, the prefix of its members' names.
	Name resource.Name

	// When tells whether a Database with these Params composes it; nil
	// means always.
	When func(Params) bool

	// Build is the pure builder, made by one or each.
	Build Builder

	// Observe reads what the function needs of the observed object into
	// Observed, once per call; nil reads nothing.
	Observe func(u map[string]any, n resource.Name, o *Observed) error

	// Ready tells whether the observed object is ready, given what is being
	// applied. It is called only for objects that exist.
	Ready Readiness
}

// A Builder builds the objects of a row, and knows their Go type.
type Builder struct {
	// typ is the Go type built, a pointer to a struct the scheme knows.
	typ    reflect.Type
	family bool
	build  func(p Params, n resource.Name) []Composed
}

// one is the builder of a row of one object.
func one[T runtime.Object](b func(Params) T) Builder {
	return Builder{typ: reflect.TypeFor[T](), build: func(p Params, n resource.Name) []Composed {
		return []Composed{{Name: n, Object: b(p)}}
	}}
}

// A member of a family: something with its own composed resource name
// suffix, such as a login.
type member interface{ Suffix() string }

// each is the builder of a family: one object per member, named the row's
// name followed by the member's suffix.
func each[E member, T runtime.Object](members func(Params) []E, b func(Params, E) T) Builder {
	return Builder{typ: reflect.TypeFor[T](), family: true, build: func(p Params, n resource.Name) []Composed {
		ms := members(p)
		out := make([]Composed, 0, len(ms))
		for _, m := range ms {
			out = append(out, Composed{Name: n + resource.Name(m.Suffix()), Object: b(p, m)})
		}
		return out
	}}
}

// Composes tells whether p composes the row.
func (k Kind) Composes(p Params) bool { return k.When == nil || k.When(p) }

// Matches tells whether a composed resource name belongs to the row.
func (k Kind) Matches(n resource.Name) bool {
	if k.Build.family {
		return strings.HasPrefix(string(n), string(k.Name))
	}
	return n == k.Name
}

// gvk is the group, version and kind of the objects the row builds.
func (k Kind) gvk() (schema.GroupVersionKind, error) {
	o, ok := reflect.New(k.Build.typ.Elem()).Interface().(runtime.Object)
	if !ok {
		return schema.GroupVersionKind{}, errors.Errorf("%s is not a Kubernetes object", k.Build.typ)
	}
	gvks, _, err := scheme.ObjectKinds(o)
	if err != nil {
		return schema.GroupVersionKind{}, errors.Wrapf(err, "cannot determine the kind of %s", k.Build.typ)
	}
	return gvks[0], nil
}

// kindOf is the row a composed resource name belongs to.
func kindOf(n resource.Name) (Kind, bool) {
	for _, k := range Kinds {
		if k.Matches(n) {
			return k, true
		}
	}
	return Kind{}, false
}

// A Composed object, its composed resource name and its row.
type Composed struct {
	Name   resource.Name
	Object runtime.Object
	Kind   Kind
}

// Compose builds every object a Database with these Params consists of, in
// the table's order. It is pure.
func Compose(p Params) []Composed {
	out := make([]Composed, 0, len(Kinds)+len(p.Logins))
	for _, k := range Kinds {
		if !k.Composes(p) {
			continue
		}
		for _, c := range k.Build.build(p, k.Name) {
			c.Kind = k
			out = append(out, c)
		}
	}
	return out
}

func sqlUsers(p Params) bool { return p.SQLUsers }

func operator(p Params) bool { return p.Metrics && p.Operator }
