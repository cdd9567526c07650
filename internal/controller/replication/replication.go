// Package replication reconciles Replications: it finds the primary among a
// Database's servers, reports every standby's state and lag, labels the
// Pods with their role for the read-write and read-only Services, drops the
// slots of standbys scaled away and keeps synchronous_standby_names, through
// crossplane-runtime's managed reconciler and the connector and external
// client here. It never promotes or demotes a server.
package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/controller/providerconfig"
)

// Event reasons of the external client, besides the managed reconciler's.
const (
	ReasonRoleLabeled            event.Reason = "RoleLabeled"
	ReasonSlotDropped            event.Reason = "SlotDropped"
	ReasonSynchronousStandbysSet event.Reason = "SynchronousStandbysSet"
	ReasonCloned                 event.Reason = "Cloned"
	ReasonReplicaConfigured      event.Reason = "ReplicaConfigured"
	ReasonReplicaProtected       event.Reason = "ReplicaProtected"
	ReasonSemiSyncSet            event.Reason = "SemiSyncSet"
)

// replicationLogin is the login replicas log in to their source as: the
// function composes its User, whose connection Secret
// spec.forProvider.replicationSecretRef names.
const replicationLogin = "replication"

// A Server is one member's database server. The engine clients in
// internal/clients implement it; the controller calls it per member.
type Server interface {
	// Observe reads what the server says about replication, in one round
	// trip once warmed up.
	Observe(ctx context.Context) (*xsql.ReplicationState, error)

	// DropSlot drops physical replication slot name if it is inactive.
	DropSlot(ctx context.Context, name string) error

	// SetSynchronousStandbyNames sets, or resets when value is empty, the
	// standbys a commit waits for, and reloads the configuration.
	SetSynchronousStandbyNames(ctx context.Context, value string) error
}

// A Promoter is a Server the provider can fail over to (PostgreSQL): its
// standbys follow whoever is primary behind the read-write Service, each on
// its own slot.
type Promoter interface {
	Server

	// CreateSlot creates physical replication slot name unless it exists.
	CreateSlot(ctx context.Context, name string) error

	// Promote makes a standby the primary and waits until it accepts
	// writes.
	Promote(ctx context.Context) error

	// RestartReceiver makes a standby connect to its primary again.
	RestartReceiver(ctx context.Context) error

	// MarkDemoted records on the primary that it follows another one when
	// it starts next.
	MarkDemoted(ctx context.Context) error

	// Detach makes a standby stop receiving WAL from anyone, also after a
	// restart, and returns once it receives none.
	Detach(ctx context.Context) error

	// Attach undoes Detach: the standby streams from the read-write
	// Service again.
	Attach(ctx context.Context) error
}

// A Replicator is a Server whose replicas the provider configures itself
// (MySQL), rather than each finding its primary (PostgreSQL's
// primary_conninfo). Every method is idempotent.
type Replicator interface {
	Server

	// Replicate makes the server a read-only replica of source, logging in
	// as cred with GTID auto-positioning, acknowledging for semi-sync when
	// semiSync: it stops replication, configures it and starts it.
	Replicate(ctx context.Context, source xsql.Endpoint, cred xsql.Credential, semiSync bool) error

	// Clone replaces the server's data with a copy of donor's, logging in
	// to donor as cred; the server restarts on the copy.
	Clone(ctx context.Context, donor xsql.Endpoint, cred xsql.Credential) error

	// Protect makes the server refuse writes, even the superuser's.
	Protect(ctx context.Context) error

	// SetSemiSync makes commits wait for n replicas, or none when 0.
	SetSemiSync(ctx context.Context, n int) error
}

// A NewServerFn returns the Server of one member at ep of a
// ProviderConfig's engine, reached as admin. It returns an error wrapping
// ErrNotImplemented for an engine whose replication the provider does not
// manage yet.
type NewServerFn func(pc *v1alpha1.ProviderConfig, ep xsql.Endpoint, admin xsql.Credential) (Server, error)

// ErrNotImplemented is returned by a NewServerFn for an engine without
// replication support.
var ErrNotImplemented = errors.New("not implemented")

// A RenderFn renders the synchronous_standby_names that makes a commit wait
// for n of standbys.
type RenderFn func(n int, standbys []string) (string, error)

// tlsReloadTimeout bounds looking at and reloading one member's TLS.
const tlsReloadTimeout = 10 * time.Second

// A connector connects a Replication to its members with the admin login
// of its ProviderConfig.
type connector struct {
	// observeTimeout bounds each member's Observe.
	observeTimeout time.Duration
	kube           client.Client
	pods           client.Reader
	usage          resource.ModernTracker
	newServer      NewServerFn
	render         func(e v1alpha1.Engine) RenderFn
	contains       func(e v1alpha1.Engine) ContainsFn
	record         event.Recorder
	// reloads remembers the members seen presenting their certificate.
	reloads *xsql.TLSReloads
}

// NewConnector returns the connector of the Replication controller: it
// reads ProviderConfigs and Secrets through kube (a manager's cached
// client), reads member Pods through pods and patches them through kube,
// records ProviderConfig usage, and reaches members through newServer; a
// member that does not answer an Observe within observeTimeout (0: the SQL
// call timeout) is unreachable for that poll.
func NewConnector(kube client.Client, pods client.Reader, newServer NewServerFn, record event.Recorder, observeTimeout time.Duration) managed.TypedExternalConnector[*v1alpha1.Replication] {
	return &connector{
		observeTimeout: observeTimeout,
		kube:           kube,
		pods:           pods,
		usage:          resource.NewProviderConfigUsageTracker(kube, &v1alpha1.ProviderConfigUsage{}),
		newServer:      newServer,
		render:         func(e v1alpha1.Engine) RenderFn { return engines[e].synchronousStandbyNames },
		contains:       func(e v1alpha1.Engine) ContainsFn { return engines[e].contains },
		record:         record,
		reloads:        &xsql.TLSReloads{},
	}
}

// Connect reads the ProviderConfig and its admin Secret and makes one
// Server per member. It does not dial: each Observe does.
func (c *connector) Connect(ctx context.Context, cr *v1alpha1.Replication) (managed.TypedExternalClient[*v1alpha1.Replication], error) {
	e := &external{pods: c.pods, kube: c.kube, record: c.record, observeTimeout: c.observeTimeout}
	if meta.WasDeleted(cr) {
		// Deleting only removes labels: no ProviderConfig needed, so a
		// Replication whose ProviderConfig is gone can still go.
		return e, nil
	}
	ref := cr.GetProviderConfigReference()
	if ref == nil {
		return nil, errors.New("spec.providerConfigRef is required")
	}
	if ref.Kind != v1alpha1.ProviderConfigKind {
		return nil, errors.Errorf("spec.providerConfigRef.kind: Unsupported value: %q: supported values: %q", ref.Kind, v1alpha1.ProviderConfigKind)
	}
	if err := c.usage.Track(ctx, cr); err != nil {
		return nil, errors.Wrap(err, "cannot track ProviderConfig usage")
	}
	pc := &v1alpha1.ProviderConfig{}
	if err := c.kube.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: ref.Name}, pc); err != nil {
		return nil, errors.Wrapf(err, "cannot get ProviderConfig %q", ref.Name)
	}
	admin, err := providerconfig.Admin(ctx, c.kube, pc)
	if err != nil {
		return nil, err
	}
	ep, err := providerconfig.Endpoint(ctx, c.kube, pc)
	if err != nil {
		return nil, err
	}

	for _, m := range cr.Spec.ForProvider.Members {
		// Each member verified against the ProviderConfig's CA, by its own
		// name (the certificate names every pod).
		mep := ep
		mep.Host, mep.Port = m.Host, m.Port
		srv, err := c.newServer(pc, mep, admin)
		if errors.Is(err, ErrNotImplemented) {
			e.unsupported = fmt.Sprintf("replication is not implemented for %s yet", pc.Spec.Engine)
			return e, nil
		}
		if err != nil {
			return nil, errors.Wrapf(err, "cannot connect to member %q", m.Name)
		}
		// Every member mounts the same TLS Secret: after a renewal each
		// is made to read it again. In the background: a member that
		// does not answer must not hold up a failover.
		if t, ok := srv.(xsql.TLSServer); ok {
			c.reloads.EnsureInBackground(mep, t, tlsReloadTimeout, nil)
		}
		e.servers = append(e.servers, srv)
	}
	e.render = c.render(pc.Spec.Engine)
	e.contains = c.contains(pc.Spec.Engine)
	e.failsOver = engines[pc.Spec.Engine].failover
	e.moves = engines[pc.Spec.Engine].moves
	// Replicas replicate from the read-write Service, which follows the
	// primary label.
	e.source = ep
	e.source.CAFile = cr.Spec.ForProvider.SourceCAFile
	e.members = cr.Spec.ForProvider.Members
	if err := e.readReplicationSecret(ctx, c.kube, cr); err != nil {
		return nil, err
	}
	return e, nil
}

// readReplicationSecret reads the replication login's password, when the
// Replication names its Secret. A Secret not there yet (the User has not
// created the login) leaves replicas unconfigured and says so; the password
// is never logged or written into status or events.
func (e *external) readReplicationSecret(ctx context.Context, kube client.Client, cr *v1alpha1.Replication) error {
	ref := cr.Spec.ForProvider.ReplicationSecretRef
	if ref == nil {
		return nil
	}
	s := &corev1.Secret{}
	err := kube.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: ref.Name}, s)
	switch {
	case kerrors.IsNotFound(err):
		e.noCredential = fmt.Sprintf("waiting for the replication login's Secret %q", ref.Name)
	case err != nil:
		return errors.Wrapf(err, "cannot get replication Secret %q", ref.Name)
	case len(s.Data[ref.Key]) == 0:
		e.noCredential = fmt.Sprintf("the replication login's Secret %q has no key %q", ref.Name, ref.Key)
	default:
		e.credential = &xsql.Credential{Username: replicationLogin, Password: string(s.Data[ref.Key])}
	}
	return nil
}

// A plan is what Update changes: exactly what Observe found to differ.
type plan struct {
	labels      []labelChange
	dropSlots   []string
	createSlots []string
	// synchronous is the synchronous_standby_names to set, when it differs.
	synchronous *string
	// promote is a failover to make, before anything else.
	promote *promotion
	// switchover is one to make, before anything else.
	switchover *switchover
	// reopen is a member to make writable again: the primary, restarted
	// read-only (MySQL), before anything else.
	reopen *int
	// restart is a Pod to delete, for it to come back at the new revision.
	restart string
	// attach are members a failover left detached, to stream again.
	attach []int
	// fence are the Pods of stale primaries to delete.
	fence []string
	// semiSync is how many replicas the primary's commits are to wait
	// for, when it differs (MySQL).
	semiSync *int
	// repairs are the changes members need to replicate (MySQL), and
	// names the members by index.
	repairs []repair
	names   []string
}

// diff describes the plan for humans; empty when there is nothing to do.
func (p plan) diff() []string {
	var out []string
	if p.promote != nil {
		out = append(out, "fail over: "+p.promote.description)
	}
	if p.switchover != nil {
		out = append(out, fmt.Sprintf("switch over from member %d to member %d", p.switchover.from, p.switchover.to))
	}
	if p.reopen != nil {
		out = append(out, fmt.Sprintf("make member %d, the primary, take writes again: it started read-only", *p.reopen))
	}
	if p.restart != "" {
		out = append(out, fmt.Sprintf("restart Pod %s at its StatefulSet's new revision", p.restart))
	}
	for _, l := range p.labels {
		if l.value == "" {
			out = append(out, fmt.Sprintf("remove label %s from Pod %s", v1alpha1.LabelRole, l.pod))
			continue
		}
		out = append(out, fmt.Sprintf("label Pod %s %s=%s", l.pod, v1alpha1.LabelRole, l.value))
	}
	for _, s := range p.dropSlots {
		out = append(out, fmt.Sprintf("drop stale replication slot %q", s))
	}
	for _, s := range p.createSlots {
		out = append(out, fmt.Sprintf("create replication slot %q", s))
	}
	for _, i := range p.attach {
		out = append(out, fmt.Sprintf("attach detached standby %s to the primary", p.names[i]))
	}
	for _, name := range p.fence {
		out = append(out, fmt.Sprintf("delete Pod %s: a stale primary beside the recorded one", name))
	}
	if p.synchronous != nil {
		out = append(out, fmt.Sprintf("set synchronous_standby_names to %q", *p.synchronous))
	}
	if p.semiSync != nil {
		out = append(out, fmt.Sprintf("make commits wait for %d replicas (semi-synchronous)", *p.semiSync))
	}
	for _, r := range p.repairs {
		switch r.kind {
		case repairClone:
			out = append(out, fmt.Sprintf("clone the primary into %s", p.names[r.member]))
		case repairReplicate:
			out = append(out, fmt.Sprintf("make %s a read-only replica of the primary", p.names[r.member]))
		case repairProtect:
			out = append(out, fmt.Sprintf("make replica %s read-only", p.names[r.member]))
		}
	}
	return out
}

// An external observes and repairs one Replication. The managed reconciler
// makes one per reconcile: Observe runs first and leaves its plan for
// Update and Delete.
type external struct {
	pods client.Reader
	kube client.Client
	// servers are the members' Servers, in spec order.
	servers []Server
	render  RenderFn
	record  event.Recorder
	// unsupported says why the engine's replication cannot be observed.
	unsupported string
	// contains compares replication positions, for engines whose replicas
	// the provider configures (MySQL); nil for the others.
	contains ContainsFn
	// source is where replicas replicate from: the read-write Service.
	source  xsql.Endpoint
	members []v1alpha1.ReplicationMember
	// credential is the replication login's, or nil with noCredential
	// saying why.
	credential   *xsql.Credential
	noCredential string

	primary Server
	answers []answer
	plan    plan
	// now is the clock failover decisions read.
	now func() time.Time
	// failsOver: the engine's standbys can be promoted by the provider.
	failsOver bool
	// detached are the members a failover detached, by index.
	detached map[int]bool
	// observeTimeout bounds each member's Observe: a member that does not
	// answer within it is unreachable for this poll.
	observeTimeout time.Duration
	// moves are how the engine's primary moves.
	moves moves
}

var _ managed.TypedExternalClient[*v1alpha1.Replication] = &external{}

// Observe asks every member, at once, what it is; one unreachable member
// does not fail the others. It reports roles and lag in status, and the
// labels, stale slots and synchronous_standby_names that differ from the
// desired ones as not up to date. A Replication always exists: there is
// nothing to create.
func (e *external) Observe(ctx context.Context, cr *v1alpha1.Replication) (managed.ExternalObservation, error) {
	pods, err := e.readPods(ctx, cr)
	if err != nil {
		return managed.ExternalObservation{}, err
	}
	if meta.WasDeleted(cr) {
		for _, m := range cr.Spec.ForProvider.Members {
			if p := pods[m.Name]; p.exists && p.role != "" {
				e.plan.labels = append(e.plan.labels, labelChange{pod: m.Name})
			}
		}
		return managed.ExternalObservation{ResourceExists: len(e.plan.labels) > 0}, nil
	}
	if e.unsupported != "" {
		cr.SetConditions(xpv2.Unavailable().WithMessage(e.unsupported))
		return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, nil
	}

	fp := cr.Spec.ForProvider
	// Before asking: a primary that does not answer has been lost since
	// it was asked, not since the observe timeout ran out.
	now := e.clock()
	e.answers = e.ask(ctx, cr.Status.AtProvider.Members)
	a := assess(fp, e.answers)
	remember(&a, cr.Status.AtProvider, now)
	prev := cr.Status.AtProvider
	cr.Status.AtProvider = a.at
	e.plan = plan{labels: labelChanges(a, pods)}
	for _, m := range fp.Members {
		e.plan.names = append(e.plan.names, m.Name)
	}

	var notes []string
	if move, why := e.primaryMove(ctx, cr, a, prev, now, pods); move != nil {
		// Nothing else until the primary has moved.
		e.plan = *move
		settle(&cr.Status.AtProvider, prev, now)
		return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: false, Diff: strings.Join(e.plan.diff(), "; ")}, nil
	} else if why != "" {
		notes = append(notes, why)
	}
	if e.promoters() {
		e.plan.fence = stalePrimaries(a, pods)
	}
	if a.primary >= 0 {
		more, err := e.planPrimary(cr, a)
		if err != nil {
			return managed.ExternalObservation{}, err
		}
		notes = append(notes, more...)
	}

	if why := readyMessage(a); why != "" {
		cr.SetConditions(xpv2.Unavailable().WithMessage(strings.Join(append([]string{why}, notes...), "; ")))
	} else {
		cr.SetConditions(xpv2.Available().WithMessage(strings.Join(notes, "; ")))
	}
	settle(&cr.Status.AtProvider, prev, now)
	diff := e.plan.diff()
	return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: len(diff) == 0, Diff: strings.Join(diff, "; ")}, nil
}

// planPrimary plans what the one primary a found, and its standbys, need:
// slots, detached members attached, synchronous_standby_names, and MySQL's
// repairs; it returns notes for the Ready condition.
func (e *external) planPrimary(cr *v1alpha1.Replication, a assessment) ([]string, error) {
	fp := cr.Spec.ForProvider
	var notes []string
	e.primary = e.servers[a.primary]
	e.plan.dropSlots = staleSlots(fp.SlotPrefix, fp.Members, a.state.Slots)
	if e.promoters() && e.moves.slots {
		e.plan.createSlots = missingSlots(fp.SlotPrefix, fp.Members, a.primary, a.state.Slots)
	}
	e.plan.attach = detachedMembers(e.answers)
	if e.render != nil {
		sb := standbys(a, fp.Members)
		want, err := e.render(fp.Synchronous, sb)
		if err != nil {
			return nil, errors.Wrap(err, "cannot render synchronous_standby_names")
		}
		if want != a.state.SynchronousStandbyNames {
			e.plan.synchronous = &want
		}
		if m := clampMessage(fp.Synchronous, len(sb)); m != "" {
			notes = append(notes, m)
		}
	}
	if e.contains != nil {
		notes = append(notes, e.planRepairs(cr, a)...)
	}
	return notes, nil
}

// planRepairs plans what the members need to replicate from the primary
// and the primary's semi-sync, writes why a member is left alone into its
// status, and returns notes for the Ready condition.
func (e *external) planRepairs(cr *v1alpha1.Replication, a assessment) []string {
	fp := cr.Spec.ForProvider
	var notes []string
	sb := standbys(a, fp.Members)
	want := semiSyncWanted(fp.Synchronous, len(sb))
	switch {
	case a.state.SemiSync == nil && want > 0:
		notes = append(notes, fmt.Sprintf("semi-synchronous replication is not available on %s: its plugin is not loaded", a.at.Primary))
	case semiSyncDiffers(a.state.SemiSync, want):
		e.plan.semiSync = &want
	}
	if m := clampMessage(fp.Synchronous, len(sb)); m != "" {
		notes = append(notes, m)
	}

	rs, why := repairs(a, e.answers, e.source, mysqlDefaultPort, e.contains)
	for i, w := range why {
		cr.Status.AtProvider.Members[i].Message = w
	}
	for _, r := range rs {
		if r.kind != repairProtect && e.credential == nil {
			continue
		}
		e.plan.repairs = append(e.plan.repairs, r)
	}
	if len(e.plan.repairs) < len(rs) {
		notes = append(notes, e.noCredential)
	}
	return notes
}

// ask observes every member concurrently, so that unreachable members cost
// one timeout in all, not one each: the observe timeout (askTimeout), else
// the SQL client's.
func (e *external) ask(ctx context.Context, prev []v1alpha1.MemberObservation) []answer {
	out := make([]answer, len(e.servers))
	var wg sync.WaitGroup
	for i, s := range e.servers {
		wg.Go(func() {
			ctx := ctx
			if d := e.askTimeout(prev, i); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			st, err := s.Observe(ctx)
			out[i] = answer{state: st, err: err}
		})
	}
	wg.Wait()
	return out
}

// reaskTimeout bounds asking a member that did not answer the last poll:
// it already had the whole observe timeout once, and one that is back
// answers in milliseconds. While the primary is lost this keeps each poll,
// the one that fails over included, short.
const reaskTimeout = 500 * time.Millisecond

// askTimeout bounds asking member i, given the members' last observed
// state: the observe timeout, shorter for a member that was unreachable.
func (e *external) askTimeout(prev []v1alpha1.MemberObservation, i int) time.Duration {
	d := e.observeTimeout
	if i < len(prev) && prev[i].Role == v1alpha1.MemberUnreachable && d > 0 {
		d = min(d, reaskTimeout)
	}
	return d
}

// readPods reads the role label of every member's Pod.
func (e *external) readPods(ctx context.Context, cr *v1alpha1.Replication) (map[string]pod, error) {
	out := map[string]pod{}
	for _, m := range cr.Spec.ForProvider.Members {
		p := &corev1.Pod{}
		err := e.pods.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: m.Name}, p)
		if kerrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, errors.Wrapf(err, "cannot get Pod %q", m.Name)
		}
		out[m.Name] = pod{exists: true, role: p.GetLabels()[v1alpha1.LabelRole], revision: p.GetLabels()[appsv1.ControllerRevisionHashLabelKey]}
	}
	return out, nil
}

// Create does nothing: a Replication always exists.
func (e *external) Create(_ context.Context, _ *v1alpha1.Replication) (managed.ExternalCreation, error) {
	return managed.ExternalCreation{}, nil
}

// Update makes exactly the changes Observe planned: role labels, then
// stale slots, then synchronous_standby_names.
func (e *external) Update(ctx context.Context, cr *v1alpha1.Replication) (managed.ExternalUpdate, error) {
	if e.plan.promote != nil {
		return managed.ExternalUpdate{}, e.moves.failover(e, ctx, cr, *e.plan.promote)
	}
	if e.plan.switchover != nil {
		return managed.ExternalUpdate{}, e.moves.switchover(e, ctx, cr, *e.plan.switchover)
	}
	if e.plan.reopen != nil {
		return managed.ExternalUpdate{}, e.reopen(ctx, cr, *e.plan.reopen)
	}
	if e.plan.restart != "" {
		return managed.ExternalUpdate{}, e.restart(ctx, cr, e.plan.restart)
	}
	for _, name := range e.plan.fence {
		uid, err := e.deletePod(ctx, cr, name, "of a stale primary", func(*corev1.Pod) bool { return true })
		if err != nil {
			return managed.ExternalUpdate{}, err
		}
		if uid != "" {
			e.record.Event(cr, event.Warning(ReasonFailover, errors.Errorf("Deleted Pod %s: its server is out of recovery beside the primary %s; it comes back as a standby", name, cr.Status.AtProvider.LastPrimary)))
		}
	}
	if (len(e.plan.dropSlots) > 0 || len(e.plan.createSlots) > 0 || e.plan.synchronous != nil) && e.primary == nil {
		return managed.ExternalUpdate{}, errors.New("cannot change the primary's settings: no primary was observed")
	}
	// Synchronous before the label: no commit through the Service is
	// acknowledged by the primary alone.
	if v := e.plan.synchronous; v != nil {
		if err := e.primary.SetSynchronousStandbyNames(ctx, *v); err != nil {
			return managed.ExternalUpdate{}, err
		}
		e.record.Event(cr, event.Normal(ReasonSynchronousStandbysSet, fmt.Sprintf("Set synchronous_standby_names on %s to %q", cr.Status.AtProvider.Primary, *v)))
	}
	if err := e.relabel(ctx, cr); err != nil {
		return managed.ExternalUpdate{}, err
	}
	for _, s := range e.plan.dropSlots {
		if err := e.primary.DropSlot(ctx, s); err != nil {
			return managed.ExternalUpdate{}, err
		}
		e.record.Event(cr, event.Normal(ReasonSlotDropped, fmt.Sprintf("Dropped replication slot %q: no member has its ordinal", s)))
	}
	for _, s := range e.plan.createSlots {
		if err := e.primary.(Promoter).CreateSlot(ctx, s); err != nil { //nolint:forcetypeassert // Planned only when every server is a Promoter.
			return managed.ExternalUpdate{}, err
		}
	}
	for _, i := range e.plan.attach {
		if err := e.servers[i].(Promoter).Attach(ctx); err != nil { //nolint:forcetypeassert // As above.
			return managed.ExternalUpdate{}, err
		}
	}
	return managed.ExternalUpdate{}, e.repair(ctx, cr)
}

// repair makes the primary's semi-sync and the members' changes Observe
// planned (MySQL). A member that fails does not stop the others; the first
// error is returned.
func (e *external) repair(ctx context.Context, cr *v1alpha1.Replication) error {
	if e.plan.semiSync == nil && len(e.plan.repairs) == 0 {
		return nil
	}
	primary, ok := e.primary.(Replicator)
	if !ok {
		return errors.New("cannot configure replicas: the engine's servers cannot be configured by the provider")
	}
	if n := e.plan.semiSync; n != nil {
		if err := primary.SetSemiSync(ctx, *n); err != nil {
			return errors.Wrapf(err, "cannot set semi-synchronous replication on %s", cr.Status.AtProvider.Primary)
		}
		e.record.Event(cr, event.Normal(ReasonSemiSyncSet, fmt.Sprintf("Commits on %s wait for %d replicas", cr.Status.AtProvider.Primary, *n)))
	}
	var errs []error
	for _, r := range e.plan.repairs {
		if err := e.repairOne(ctx, cr, r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func (e *external) repairOne(ctx context.Context, cr *v1alpha1.Replication, r repair) error {
	name := e.plan.names[r.member]
	srv, ok := e.servers[r.member].(Replicator)
	if !ok {
		return errors.Errorf("cannot configure %s: its server cannot be configured by the provider", name)
	}
	switch r.kind {
	case repairProtect:
		if err := srv.Protect(ctx); err != nil {
			return errors.Wrapf(err, "cannot make %s read-only", name)
		}
		e.record.Event(cr, event.Normal(ReasonReplicaProtected, fmt.Sprintf("Made replica %s read-only", name)))
	case repairReplicate:
		semiSync := e.answers[r.member].state.SemiSync != nil
		if err := srv.Replicate(ctx, e.source, *e.credential, semiSync); err != nil {
			return errors.Wrapf(err, "cannot make %s a replica", name)
		}
		e.record.Event(cr, event.Normal(ReasonReplicaConfigured, fmt.Sprintf("Made %s a read-only replica of %s", name, net.JoinHostPort(e.source.Host, strconv.Itoa(e.source.Port)))))
	case repairClone:
		p := e.members[indexOf(e.members, cr.Status.AtProvider.Primary)]
		donor := xsql.Endpoint{Host: p.Host, Port: p.Port, TLS: e.source.TLS}
		if err := srv.Clone(ctx, donor, *e.credential); err != nil {
			return errors.Wrapf(err, "cannot clone %s into %s", p.Name, name)
		}
		e.record.Event(cr, event.Normal(ReasonCloned, fmt.Sprintf("Cloned %s into %s: it restarts on the copy", p.Name, name)))
	}
	return nil
}

func indexOf(members []v1alpha1.ReplicationMember, name string) int {
	for i, m := range members {
		if m.Name == name {
			return i
		}
	}
	return 0
}

// relabel patches the role label of the Pods in the plan, and nothing else
// of them: a JSON merge patch of that one label. A Pod gone since Observe
// needs nothing.
func (e *external) relabel(ctx context.Context, cr *v1alpha1.Replication) error {
	for _, l := range e.plan.labels {
		var value any
		if l.value != "" {
			value = l.value
		}
		b, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{v1alpha1.LabelRole: value}}})
		if err != nil {
			return errors.Wrap(err, "cannot encode the role label patch")
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: cr.GetNamespace(), Name: l.pod}}
		if err := e.kube.Patch(ctx, p, client.RawPatch(types.MergePatchType, b)); client.IgnoreNotFound(err) != nil {
			return errors.Wrapf(err, "cannot label Pod %q", l.pod)
		}
		msg := fmt.Sprintf("Labeled Pod %s %s=%s", l.pod, v1alpha1.LabelRole, l.value)
		if l.value == "" {
			msg = fmt.Sprintf("Removed label %s from Pod %s", v1alpha1.LabelRole, l.pod)
		}
		e.record.Event(cr, event.Normal(ReasonRoleLabeled, msg))
	}
	return nil
}

// Delete removes the role labels from the members' Pods and changes nothing
// on the servers. The managed reconciler observes again and removes its
// finalizer once no Pod carries the label.
func (e *external) Delete(ctx context.Context, cr *v1alpha1.Replication) (managed.ExternalDelete, error) {
	cr.SetConditions(xpv2.Deleting())
	return managed.ExternalDelete{}, e.relabel(ctx, cr)
}

// Disconnect does nothing: connection pools outlive a reconcile.
func (e *external) Disconnect(_ context.Context) error {
	return nil
}
