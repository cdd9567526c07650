package fn

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// The SQL provider's API, which the function composes: a ProviderConfig
// pointing at the Database's server with its superuser Secret, and a User per
// login, each publishing a connection Secret an app can mount.
const (
	sqlAPIVersion = "sql.database.example.com/v1alpha1"

	rnProviderConfig resource.Name = "sql-providerconfig"
	rnAppUser        resource.Name = "sql-user-app"

	// appLogin owns the app database; apps use it, never the superuser.
	appLogin = "app"

	annotationExternalName = "crossplane.io/external-name"
)

// A login is one SQL login the function composes a User for.
type login struct {
	Resource   resource.Name
	Object     string // the User's and its connection Secret's name
	Login      string
	Privileges v1.Privileges
	Rotation   string
}

// logins are the app login and spec.users.
func logins(n names, users []v1.User) []login {
	ls := []login{{Resource: rnAppUser, Object: n.Name + "-app", Login: appLogin, Privileges: v1.Owner}}
	for _, u := range users {
		pr := u.Privileges
		if pr == "" {
			pr = v1.ReadWrite
		}
		ls = append(ls, login{
			Resource: resource.Name("sql-user-" + u.Name), Object: n.Name + "-user-" + u.Name,
			Login: u.Name, Privileges: pr, Rotation: u.PasswordRotationPeriod,
		})
	}
	return ls
}

// ProviderConfig points the SQL provider at the Database's server, with the
// superuser credentials from the composed Secret.
func ProviderConfig(p Params) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"engine": string(p.names.Engine),
			"host":   p.Host(),
			"port":   int64(p.Engine.Port),
			"tls":    "disable",
			"credentials": map[string]any{
				"secretRef": map[string]any{"name": p.Secret(), "usernameKey": keyUsername, "passwordKey": keyPassword},
			},
		},
	}}
	u.SetAPIVersion(sqlAPIVersion)
	u.SetKind("ProviderConfig")
	u.SetName(p.Name)
	u.SetNamespace(p.Namespace)
	u.SetLabels(p.Labels("sql"))
	return u
}

// SQLUser is one login with its privileges on the app database and its
// connection Secret.
func SQLUser(p Params, l login) *unstructured.Unstructured {
	fp := map[string]any{"database": appDatabase, "privileges": string(l.Privileges)}
	if l.Rotation != "" {
		fp["passwordRotation"] = map[string]any{"period": l.Rotation}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"forProvider":                fp,
			"providerConfigRef":          map[string]any{"name": p.Name, "kind": "ProviderConfig"},
			"writeConnectionSecretToRef": map[string]any{"name": l.Object},
		},
	}}
	u.SetAPIVersion(sqlAPIVersion)
	u.SetKind("User")
	u.SetName(l.Object)
	u.SetNamespace(p.Namespace)
	u.SetLabels(p.Labels("sql"))
	u.SetAnnotations(map[string]string{annotationExternalName: l.Login})
	return u
}
