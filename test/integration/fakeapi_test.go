package integration

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// fakeAPI is a fake API server, as the provider's controllers read it: the
// ProviderConfig "default" for a server of engine on 127.0.0.1:port (with
// a Secret "tls" in objs, verified against its CA), the Secret "admin" with
// its admin login, and objs.
func fakeAPI(t testing.TB, engine v1alpha1.Engine, port int, user, password string, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	pc := &v1alpha1.ProviderConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: "default"},
		Spec: v1alpha1.ProviderConfigSpec{
			Engine: engine, Host: "127.0.0.1", Port: port, TLS: v1alpha1.TLSDisable,
			Credentials: v1alpha1.ProviderCredentials{SecretRef: v1alpha1.AdminSecretReference{Name: "admin", UsernameKey: "username", PasswordKey: "password"}},
		},
	}
	// With a TLS Secret among objs, the provider verifies the server as
	// the composed ProviderConfig has it: verify-full against its CA.
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok && s.GetName() == tlsSecretName {
			pc.Spec.TLS = v1alpha1.TLSVerifyFull
			pc.Spec.TLSSecretRef = &v1alpha1.TLSSecretReference{Name: tlsSecretName, CAKey: "ca.crt", CertificateKey: "tls.crt"}
		}
	}
	objs = append(objs, pc,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: "admin"},
			Data:       map[string][]byte{"username": []byte(user), "password": []byte(password)},
		},
	)
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

var podUIDs atomic.Int64

// memberPod is pod index of the Database orders, as its StatefulSet
// creates it, with more labels.
func memberPod(name string, index int, more map[string]string) *corev1.Pod {
	labels := map[string]string{"app.kubernetes.io/instance": "orders", appsv1.PodIndexLabel: strconv.Itoa(index)}
	for k, v := range more {
		labels[k] = v
	}
	// A UID of its own, as the API server gives each Pod it creates.
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: name, Labels: labels, UID: types.UID(fmt.Sprintf("uid-%s-%d", name, podUIDs.Add(1)))}}
}
