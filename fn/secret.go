package fn

import (
	"crypto/rand"
	"encoding/base64"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/function-sdk-go/errors"
)

// passwordBytes of entropy in a generated password: 192 bits.
const passwordBytes = 24

// Secret holds the superuser credentials and where to reach the server. It is
// the only place the password is written; every container reads it through a
// secretKeyRef.
func Secret(p Params) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: p.Secret(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			keyUsername: []byte(p.Credentials.Username),
			keyPassword: []byte(p.Credentials.Password),
			keyHost:     []byte(p.Host()),
			keyPort:     []byte(itoa(p.Engine.Port)),
			keyDatabase: []byte(appDatabase),
		},
	}
}

// GeneratePassword returns a password of 192 random bits from crypto/rand,
// URL-safe base64 encoded so that it needs no quoting in a DSN or a shell.
func GeneratePassword() (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", errors.Wrap(err, "cannot read random bytes")
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
