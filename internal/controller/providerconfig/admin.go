package providerconfig

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// Admin reads the admin login a ProviderConfig names from its Secret, keys
// username and password unless it names others. The Secret's read error
// is wrapped, so callers can tell a Secret that is gone.
func Admin(ctx context.Context, kube client.Reader, pc *v1alpha1.ProviderConfig) (xsql.Credential, error) {
	sref := pc.Spec.Credentials.SecretRef
	s := &corev1.Secret{}
	if err := kube.Get(ctx, types.NamespacedName{Namespace: pc.GetNamespace(), Name: sref.Name}, s); err != nil {
		return xsql.Credential{}, errors.Wrapf(err, "cannot get admin Secret %q of ProviderConfig %q", sref.Name, pc.GetName())
	}
	user, pass := keyOr(sref.UsernameKey, "username"), keyOr(sref.PasswordKey, "password")
	admin := xsql.Credential{Username: string(s.Data[user]), Password: string(s.Data[pass])}
	if admin.Username == "" || admin.Password == "" {
		return xsql.Credential{}, errors.Errorf("admin Secret %q needs keys %q and %q", sref.Name, user, pass)
	}
	return admin, nil
}

func keyOr(k, def string) string {
	if k == "" {
		return def
	}
	return k
}

// Endpoint is where a ProviderConfig's server is, with its TLS Secret's CA
// and the certificate the server should present, when it names one.
func Endpoint(ctx context.Context, kube client.Reader, pc *v1alpha1.ProviderConfig) (xsql.Endpoint, error) {
	ep := xsql.Endpoint{Host: pc.Spec.Host, Port: pc.Spec.Port, TLS: pc.Spec.TLS}
	ref := pc.Spec.TLSSecretRef
	if ref == nil {
		return ep, nil
	}
	s := &corev1.Secret{}
	if err := kube.Get(ctx, types.NamespacedName{Namespace: pc.GetNamespace(), Name: ref.Name}, s); err != nil {
		return xsql.Endpoint{}, errors.Wrapf(err, "cannot get TLS Secret %q of ProviderConfig %q", ref.Name, pc.GetName())
	}
	caKey := keyOr(ref.CAKey, "ca.crt")
	ep.CA = s.Data[caKey]
	if len(ep.CA) == 0 {
		return xsql.Endpoint{}, errors.Errorf("TLS Secret %q needs key %q", ref.Name, caKey)
	}
	ep.Certificate = s.Data[keyOr(ref.CertificateKey, "tls.crt")]
	return ep, nil
}
