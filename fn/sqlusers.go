package fn

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/crossplane/function-sdk-go/resource"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// The SQL provider's API, which the function composes: a ProviderConfig
// pointing at the Database's server with its superuser Secret, and a User per
// login, each publishing a connection Secret an app can mount.
const (
	rnProviderConfig resource.Name = "sql-providerconfig"
	// rnUserPrefix is followed by the login: sql-user-app, sql-user-<login>.
	rnUserPrefix resource.Name = "sql-user-"

	// appLogin owns the app database; apps use it, never the superuser.
	appLogin = "app"
	// replicationLogin is what standbys stream from the primary as.
	replicationLogin = "replication"
	// monitoringLogin is what the metrics exporter reads the server's
	// statistics as: never the superuser.
	monitoringLogin = "monitoring"
)

// A login is one SQL login the function composes a User for.
type login struct {
	Object     string // the User's and its connection Secret's name
	Login      string
	Privileges sqlv1alpha1.Privileges
	Rotation   string
}

// Suffix of the login's composed resource name: its login name, unique
// within a Database.
func (l login) Suffix() string { return l.Login }

// logins are the app login, spec.users, when standbys stream the
// replication login, and with metrics the exporter's monitoring login. The
// replication and monitoring logins' passwords never rotate on a schedule:
// standbys and the exporter read them only when they start.
func logins(n names, users []v1.User, replicated, metrics bool) []login {
	ls := []login{{Object: n.Name + "-app", Login: appLogin, Privileges: sqlv1alpha1.Owner}}
	for _, u := range users {
		pr := u.Privileges
		if pr == "" {
			pr = v1.ReadWrite
		}
		ls = append(ls, login{Object: n.Name + "-user-" + u.Name, Login: u.Name, Privileges: sqlv1alpha1.Privileges(pr), Rotation: u.PasswordRotationPeriod})
	}
	if replicated {
		ls = append(ls, login{Object: n.ReplicationUser(), Login: replicationLogin, Privileges: sqlv1alpha1.ReplicationPrivileges})
	}
	if metrics {
		ls = append(ls, login{Object: n.MonitoringUser(), Login: monitoringLogin, Privileges: sqlv1alpha1.MonitoringPrivileges})
	}
	return ls
}

// ProviderConfig points the SQL provider at the Database's server, with the
// superuser credentials from the composed Secret. The provider verifies
// the server against the TLS Secret's CA and the Service's name, writes
// the CA into every login's connection Secret, and reloads the server's
// TLS when it presents another certificate than the Secret's.
func ProviderConfig(p Params) *sqlv1alpha1.ProviderConfig {
	return &sqlv1alpha1.ProviderConfig{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels("sql")},
		Spec: sqlv1alpha1.ProviderConfigSpec{
			Engine: sqlv1alpha1.Engine(p.names.Engine),
			Host:   p.Host(),
			Port:   int(p.Engine.Port),
			TLS:    sqlv1alpha1.TLSVerifyFull,
			TLSSecretRef: &sqlv1alpha1.TLSSecretReference{
				Name: p.TLSSecret(), CAKey: keyCACert, CertificateKey: keyTLSCert,
			},
			Credentials: sqlv1alpha1.ProviderCredentials{SecretRef: sqlv1alpha1.AdminSecretReference{
				Name: p.Secret(), UsernameKey: keyUsername, PasswordKey: keyPassword,
			}},
		},
	}
}

// SQLUser is one login with its privileges on the app database and its
// connection Secret.
func SQLUser(p Params, l login) *sqlv1alpha1.User {
	u := &sqlv1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{
			Name: l.Object, Namespace: p.Namespace, Labels: p.Labels("sql"),
			Annotations: map[string]string{meta.AnnotationKeyExternalName: l.Login},
		},
		Spec: sqlv1alpha1.UserSpec{
			ForProvider: sqlv1alpha1.UserParameters{
				Database:   appDatabase,
				Privileges: l.Privileges,
			},
			ProviderConfigReference:          &xpv2.ProviderConfigReference{Name: p.Name, Kind: sqlv1alpha1.ProviderConfigKind},
			WriteConnectionSecretToReference: &xpv2.LocalSecretReference{Name: l.Object},
		},
	}
	if l.Rotation != "" {
		u.Spec.ForProvider.PasswordRotation = &sqlv1alpha1.PasswordRotation{Period: l.Rotation}
	}
	return u
}
