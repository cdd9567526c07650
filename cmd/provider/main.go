// Command provider runs dbplane's provider: the controllers that keep
// database logins (Users) in sync with PostgreSQL and MySQL servers, and
// watch and repair their replication (Replications).
package main

import (
	"time"

	"github.com/alecthomas/kong"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/crossplane/crossplane-runtime/v2/pkg/controller"
	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/feature"
	"github.com/crossplane/crossplane-runtime/v2/pkg/gate"
	"github.com/crossplane/crossplane-runtime/v2/pkg/logging"
	"github.com/crossplane/crossplane-runtime/v2/pkg/ratelimiter"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/customresourcesgate"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/statemetrics"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	provider "github.com/dbplane/dbplane/internal/controller"
	"github.com/dbplane/dbplane/internal/controller/replication"
	"github.com/dbplane/dbplane/internal/controller/user"
)

// CLI of the provider. Every flag can also be set from its environment
// variable, as Crossplane's DeploymentRuntimeConfig sets them.
type CLI struct {
	Debug bool `env:"DEBUG" help:"Emit debug logs in addition to info logs." short:"d"`

	LeaderElection bool   `env:"LEADER_ELECTION" help:"Elect a leader among replicas through a Lease, so only one reconciles."`
	LeaderID       string `default:"dbplane-provider-sql" env:"LEADER_ELECTION_ID" help:"Name of the leader election Lease."`
	LeaderNS       string `env:"POD_NAMESPACE" help:"Namespace of the leader election Lease; in a cluster, the provider's own."`

	SyncInterval            time.Duration `default:"1h"  env:"SYNC_INTERVAL"        help:"How often every resource is reconciled from the cache, besides polls."`
	PollInterval            time.Duration `default:"1m"  env:"POLL_INTERVAL"        help:"How often each User's login is checked for drift."`
	ReplicationPoll         time.Duration `default:"2s"  env:"REPLICATION_POLL_INTERVAL" help:"How often each Replication's servers are asked: it bounds how soon a lost primary is noticed."`
	ReplicationLostPoll     time.Duration `default:"500ms" env:"REPLICATION_LOST_POLL_INTERVAL" help:"How often they are asked while the primary is lost."`
	ReplicationObserve      time.Duration `default:"2s"  env:"REPLICATION_OBSERVE_TIMEOUT" help:"How long one server is waited for when asked: one that does not answer within it (cut off, not refusing) is unreachable for that poll."`
	PollStateMetricInterval time.Duration `default:"5s"  env:"POLL_STATE_METRIC"    help:"How often the managed resource state metrics are recorded."`
	MaxReconcileRate        int           `default:"10"  env:"MAX_RECONCILE_RATE"   help:"Reconciles per second across all controllers, and concurrent reconciles per controller."`
	SQLCallTimeout          time.Duration `default:"20s" env:"SQL_CALL_TIMEOUT"     help:"Bound on every SQL call, waiting for a connection included."`
	SQLDialTimeout          time.Duration `default:"10s" env:"SQL_DIAL_TIMEOUT"     help:"Bound on connecting and logging in to a server."`
	PoolIdle                time.Duration `default:"10m" env:"SQL_POOL_IDLE"        help:"Close a server's connection pool after this long unused."`
	AbandonAfter            time.Duration `default:"15m" env:"ABANDON_UNREACHABLE_AFTER" help:"Stop trying to drop the login of a User being deleted after its server has been unreachable this long."`

	AddressMap string `env:"SQL_ADDRESS_MAP" help:"For tests only: a YAML or JSON file mapping host:port (as ProviderConfigs and Replication members name servers) to the host:port to dial instead, read on every dial. Unmapped addresses are dialled as they are." placeholder:"FILE" type:"path"`

	MetricsAddress string `default:":8080" env:"METRICS_BIND_ADDRESS" help:"Address of the Prometheus metrics endpoint."`
	HealthAddress  string `default:":8081" env:"HEALTH_PROBE_BIND_ADDRESS" help:"Address of the health and readiness probes."`
}

// Run the provider until it is signalled to stop.
func (c *CLI) Run() error {
	zl := zap.New(zap.UseDevMode(c.Debug))
	ctrl.SetLogger(zl)
	log := logging.NewLogrLogger(zl.WithName("provider-sql"))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return errors.Wrap(err, "cannot get the API server's configuration")
	}
	mgr, err := ctrl.NewManager(ratelimiter.LimitRESTConfig(cfg, c.MaxReconcileRate), ctrl.Options{
		Cache:                   cache.Options{SyncPeriod: &c.SyncInterval},
		LeaderElection:          c.LeaderElection,
		LeaderElectionID:        c.LeaderID,
		LeaderElectionNamespace: c.LeaderNS,
		Metrics:                 metricsserver.Options{BindAddress: c.MetricsAddress},
		HealthProbeBindAddress:  c.HealthAddress,
	})
	if err != nil {
		return errors.Wrap(err, "cannot create the controller manager")
	}
	if err := v1alpha1.AddToScheme(mgr.GetScheme()); err != nil {
		return errors.Wrap(err, "cannot add the provider's APIs to the scheme")
	}
	if err := apiextensionsv1.AddToScheme(mgr.GetScheme()); err != nil {
		return errors.Wrap(err, "cannot add CustomResourceDefinitions to the scheme")
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return errors.Wrap(err, "cannot add the health check")
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return errors.Wrap(err, "cannot add the readiness check")
	}

	// crossplane-runtime's managed resource metrics, next to
	// controller-runtime's reconcile metrics on the same endpoint.
	mm := managed.NewMRMetricRecorder()
	sm := statemetrics.NewMRStateMetrics()
	metrics.Registry.MustRegister(mm, sm)

	pools := xsql.NewPools(c.PoolIdle)
	if err := mgr.Add(pools); err != nil {
		return errors.Wrap(err, "cannot add the connection pools")
	}

	o := controller.Options{
		Logger:                  log,
		MaxConcurrentReconciles: c.MaxReconcileRate,
		PollInterval:            c.PollInterval,
		GlobalRateLimiter:       ratelimiter.NewGlobal(c.MaxReconcileRate),
		Features:                &feature.Flags{},
		MetricOptions: &controller.MetricOptions{
			PollStateMetricInterval: c.PollStateMetricInterval,
			MRMetrics:               mm,
			MRStateMetrics:          sm,
		},
		Gate: new(gate.Gate[schema.GroupVersionKind]),
	}
	o.Features.Enable(feature.EnableBetaManagementPolicies)

	if err := customresourcesgate.Setup(mgr, o); err != nil {
		return errors.Wrap(err, "cannot set up the CRD gate")
	}
	so := xsql.Options{Timeouts: xsql.Timeouts{Call: c.SQLCallTimeout, Dial: c.SQLDialTimeout}}
	if c.AddressMap != "" {
		log.Info("Dialling SQL servers through an address map: for tests only", "address-map", c.AddressMap)
		so.Dial = xsql.AddressMap{Path: c.AddressMap}.Dial(nil)
	}
	uo := user.Options{
		Pools:        pools,
		SQL:          so,
		AbandonAfter: c.AbandonAfter,
	}
	ro := replication.Options{PollInterval: c.ReplicationPoll, LostPollInterval: c.ReplicationLostPoll, ObserveTimeout: c.ReplicationObserve}
	if err := provider.SetupGated(mgr, o, uo, ro); err != nil {
		return errors.Wrap(err, "cannot set up the controllers")
	}
	return errors.Wrap(mgr.Start(ctrl.SetupSignalHandler()), "cannot run the controller manager")
}

func main() {
	ctx := kong.Parse(&CLI{}, kong.Description("dbplane's provider: PostgreSQL and MySQL logins with least privilege and rotated passwords."))
	ctx.FatalIfErrorf(ctx.Run())
}
