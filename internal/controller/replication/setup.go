package replication

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossplane/crossplane-runtime/v2/pkg/controller"
	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/ratelimiter"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	"github.com/crossplane/crossplane-runtime/v2/pkg/statemetrics"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/mysql"
	"github.com/dbplane/dbplane/internal/clients/postgres"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// Options of the Replication controller beyond crossplane-runtime's.
type Options struct {
	// Pools are the connection pools shared between reconciles.
	Pools *xsql.Pools
	// SQL configures connections to servers.
	SQL xsql.Options
	// PollInterval is how often each Replication's servers are asked,
	// which bounds how soon a lost primary is noticed; while one is lost
	// they are asked every LostPollInterval.
	PollInterval, LostPollInterval time.Duration
	// ObserveTimeout bounds asking one server; one that does not answer
	// within it is unreachable for that poll (0: the SQL call timeout).
	ObserveTimeout time.Duration
}

// pollInterval polls faster while the primary is lost, so that the
// failover happens close to its delay.
func (o Options) pollInterval(mg resource.Managed, def time.Duration) time.Duration {
	every := def
	if o.PollInterval > 0 {
		every = o.PollInterval
	}
	if r, ok := mg.(*v1alpha1.Replication); ok && r.Status.AtProvider.PrimaryLostAt != nil && o.LostPollInterval > 0 {
		every = o.LostPollInterval
	}
	return every
}

// An engine is what differs between engines' replication, as data.
type engine struct {
	// newServer returns the Server of one member; nil when the provider
	// does not manage the engine's replication yet.
	newServer func(o Options, flavors *mysql.Flavors, ep xsql.Endpoint, admin xsql.Credential) (Server, error)
	// failover: the provider promotes a standby when the primary is lost,
	// as moves say.
	failover bool
	// moves are how the engine's primary moves: failover, switchover and
	// what they need.
	moves moves
	// synchronousStandbyNames renders the setting that makes commits wait
	// for n of standbys; nil when the engine has none.
	synchronousStandbyNames RenderFn
	// contains compares replication positions; set for engines whose
	// replicas the provider configures itself (MySQL).
	contains ContainsFn
}

// mysqlDefaultPort is where a MySQL member without a port listens.
const mysqlDefaultPort = mysql.DefaultPort

// engines are the engines' replication. MySQL 8 and MariaDB (which the
// tests run) are one engine; the mysql client tells them apart.
var engines = map[v1alpha1.Engine]engine{
	v1alpha1.PostgreSQL: {
		newServer: func(o Options, _ *mysql.Flavors, ep xsql.Endpoint, admin xsql.Credential) (Server, error) {
			return postgres.NewReplicationClient(postgres.PoolOpener(o.Pools, ep, admin, o.SQL)).WithServedCertificate(func(ctx context.Context) ([]byte, error) {
				return postgres.ServedCertificate(ctx, ep, admin, o.SQL)
			}), nil
		},
		synchronousStandbyNames: postgres.SynchronousStandbyNames,
		failover:                true,
		moves:                   pgMoves,
	},
	v1alpha1.MySQL: {
		newServer: func(o Options, flavors *mysql.Flavors, ep xsql.Endpoint, admin xsql.Credential) (Server, error) {
			db, err := mysql.PoolDB(o.Pools, ep, admin, o.SQL)
			if err != nil {
				return nil, err
			}
			return mysql.NewReplicationClient(db, ep, flavors).WithServedCertificate(func(ctx context.Context) ([]byte, error) {
				return mysql.ServedCertificate(ctx, ep, admin, o.SQL)
			}), nil
		},
		contains: mysql.PositionContains,
		failover: true,
		moves:    mysqlMoves,
	},
}

// NewServer returns the NewServerFn of real servers, reached through o's
// pools.
func NewServer(o Options) NewServerFn {
	flavors := &mysql.Flavors{}
	return func(pc *v1alpha1.ProviderConfig, ep xsql.Endpoint, admin xsql.Credential) (Server, error) {
		e, ok := engines[pc.Spec.Engine]
		if !ok {
			return nil, errors.Errorf("spec.engine: Unsupported value: %q: supported values: %q, %q", pc.Spec.Engine, v1alpha1.PostgreSQL, v1alpha1.MySQL)
		}
		if e.newServer == nil {
			return nil, errors.Wrapf(ErrNotImplemented, "replication of %s", pc.Spec.Engine)
		}
		return e.newServer(o, flavors, ep, admin)
	}
}

// Setup adds a controller that reconciles Replications.
func Setup(mgr ctrl.Manager, o controller.Options, ro Options) error {
	name := managed.ControllerName(v1alpha1.ReplicationGroupKind)
	//nolint:staticcheck // crossplane-runtime's event recorder takes the record.EventRecorder interface.
	record := event.NewAPIRecorder(mgr.GetEventRecorderFor(name), o.EventFilterFunctions...)

	opts := []managed.ReconcilerOption{
		// Pods are read uncached: a cached client would watch every Pod in
		// the cluster to read a few labels once a poll.
		managed.WithTypedExternalConnector(NewConnector(mgr.GetClient(), mgr.GetAPIReader(), NewServer(ro), record, ro.ObserveTimeout)),
		managed.WithLogger(o.Logger.WithValues("controller", name)),
		managed.WithPollInterval(o.PollInterval),
		managed.WithPollIntervalHook(ro.pollInterval),
		managed.WithRecorder(record),
		managed.WithManagementPolicies(),
		// Nothing is created: the Replication's name is all it needs.
		managed.WithDeterministicExternalName(true),
		managed.WithCreationGracePeriod(0),
	}
	if o.MetricOptions != nil {
		opts = append(opts, managed.WithMetricRecorder(o.MetricOptions.MRMetrics))
		if o.MetricOptions.MRStateMetrics != nil {
			sr := statemetrics.NewMRStateRecorder(mgr.GetClient(), o.Logger, o.MetricOptions.MRStateMetrics, &v1alpha1.ReplicationList{}, o.MetricOptions.PollStateMetricInterval)
			if err := mgr.Add(sr); err != nil {
				return errors.Wrap(err, "cannot add the Replication state metrics recorder")
			}
		}
	}

	r := managed.NewReconciler(mgr, resource.ManagedKind(v1alpha1.ReplicationGroupVersionKind), opts...)
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.ForControllerRuntime()).
		WithEventFilter(resource.DesiredStateChanged()).
		For(&v1alpha1.Replication{}).
		Complete(ratelimiter.NewReconciler(name, r, o.GlobalRateLimiter))
}

// SetupGated adds the Replication controller once the Replication CRD
// exists.
func SetupGated(mgr ctrl.Manager, o controller.Options, ro Options) error {
	o.Gate.Register(func() {
		if err := Setup(mgr, o, ro); err != nil {
			mgr.GetLogger().Error(err, "cannot set up the Replication controller")
		}
	}, v1alpha1.ReplicationGroupVersionKind)
	return nil
}
