package fn

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/crossplane/function-sdk-go/resource"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// AnnotationSwitchoverTo on a Database names the pod to be its primary:
// the SQL provider switches over to it once it streams.
const AnnotationSwitchoverTo = "database.example.com/switchover-to"

// rnReplication is the Replication's composed resource name.
const rnReplication resource.Name = "replication"

// Replication has the SQL provider watch the servers of a Database with
// standbys: it reports each one's role, lag and synchronous state, keeps the
// role labels the Services select by true, drops the slots of standbys
// scaled away and sets how many standbys a commit waits for. Every pod is a
// member, the first included: any may be the primary.
func Replication(p Params) *sqlv1alpha1.Replication {
	members := make([]sqlv1alpha1.ReplicationMember, 0, p.Replicas)
	for i := range p.Replicas {
		members = append(members, sqlv1alpha1.ReplicationMember{
			Name: p.StatefulSet() + "-" + itoa(i), Host: p.PodHost(i), Port: int(p.Engine.Port),
		})
	}
	var secret *xpv2.LocalSecretKeySelector
	sourceCAFile := ""
	if p.Engine.ProviderReplicates {
		secret = &xpv2.LocalSecretKeySelector{LocalSecretReference: xpv2.LocalSecretReference{Name: p.ReplicationUser()}, Key: keyPassword}
		// Replicas verify their source against the CA every pod mounts.
		sourceCAFile = tlsDir + "/" + keyCACert
	}
	return &sqlv1alpha1.Replication{
		ObjectMeta: metav1.ObjectMeta{Name: p.Replication(), Namespace: p.Namespace, Labels: p.Labels("sql")},
		Spec: sqlv1alpha1.ReplicationSpec{
			ProviderConfigReference: &xpv2.ProviderConfigReference{Name: p.Name, Kind: sqlv1alpha1.ProviderConfigKind},
			ForProvider: sqlv1alpha1.ReplicationParameters{
				Members:      members,
				SlotPrefix:   p.SlotPrefix(),
				Synchronous:  int(p.SyncStandbys),
				SwitchoverTo: p.SwitchoverTo,
				StatefulSet:  statefulSetIf(p.ProviderRolls, p.StatefulSet()),
				// The replication User's connection Secret.
				ReplicationSecretRef: secret,
				SourceCAFile:         sourceCAFile,
			},
		},
	}
}

func statefulSetIf(ok bool, name string) string {
	if ok {
		return name
	}
	return ""
}
