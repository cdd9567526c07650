// Package controller sets up every controller of the provider.
package controller

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossplane/crossplane-runtime/v2/pkg/controller"

	"github.com/dbplane/dbplane/internal/controller/providerconfig"
	"github.com/dbplane/dbplane/internal/controller/replication"
	"github.com/dbplane/dbplane/internal/controller/user"
)

// SetupGated adds every controller, each once its CRDs exist.
// The Replication controller shares the User controller's pools and SQL
// options; ro adds its poll intervals.
func SetupGated(mgr ctrl.Manager, o controller.Options, uo user.Options, ro replication.Options) error {
	if err := providerconfig.SetupGated(mgr, o); err != nil {
		return err
	}
	if err := user.SetupGated(mgr, o, uo); err != nil {
		return err
	}
	return replication.SetupGated(mgr, o, replicationOptions(uo, ro))
}

// Setup adds every controller at once, for CRDs known to exist.
func Setup(mgr ctrl.Manager, o controller.Options, uo user.Options, ro replication.Options) error {
	if err := providerconfig.Setup(mgr, o); err != nil {
		return err
	}
	if err := user.Setup(mgr, o, uo); err != nil {
		return err
	}
	return replication.Setup(mgr, o, replicationOptions(uo, ro))
}

// replicationOptions are the Replication controller's options: the User
// controller's pools and SQL options, shared.
func replicationOptions(uo user.Options, ro replication.Options) replication.Options {
	ro.Pools, ro.SQL = uo.Pools, uo.SQL
	return ro
}
