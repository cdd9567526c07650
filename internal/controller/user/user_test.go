package user

import (
	"context"
	"net"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	"github.com/crossplane/crossplane-runtime/v2/pkg/test"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

var (
	now     = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	errBoom = errors.New("boom")
)

// A fakeServer answers with its functions and records what it was asked
// to change.
type fakeServer struct {
	observe func(l xsql.Login) (*xsql.Observation, error)
	verify  func(password string) (bool, error)
	fail    error

	changes []string
}

func (f *fakeServer) Observe(_ context.Context, l xsql.Login) (*xsql.Observation, error) {
	return f.observe(l)
}

func (f *fakeServer) VerifyPassword(_ context.Context, _ xsql.Login, _ *xsql.Observation, pw string) (bool, error) {
	return f.verify(pw)
}

func (f *fakeServer) Create(_ context.Context, l xsql.Login, _ *xsql.Observation, pw string) error {
	f.changes = append(f.changes, "Create "+l.Name+" "+string(l.Privileges)+" "+pw)
	return f.fail
}

func (f *fakeServer) SetPassword(_ context.Context, l xsql.Login, pw string) error {
	f.changes = append(f.changes, "SetPassword "+l.Name+" "+pw)
	return f.fail
}

func (f *fakeServer) SetPrivileges(_ context.Context, l xsql.Login, _ *xsql.Observation) error {
	f.changes = append(f.changes, "SetPrivileges "+l.Name)
	return f.fail
}

func (f *fakeServer) Delete(_ context.Context, l xsql.Login) error {
	f.changes = append(f.changes, "Delete "+l.Name)
	return f.fail
}

func (f *fakeServer) ConnectionDetails(db string, c xsql.Credential) map[string][]byte {
	return map[string][]byte{"database": []byte(db), "username": []byte(c.Username), "password": []byte(c.Password)}
}

func details(pw string) managed.ConnectionDetails {
	return managed.ConnectionDetails{"database": []byte("app"), "username": []byte("app_rw"), "password": []byte(pw)}
}

func exists(drift ...string) func(xsql.Login) (*xsql.Observation, error) {
	return func(xsql.Login) (*xsql.Observation, error) {
		return &xsql.Observation{Exists: true, Verifier: "v", Drift: drift}, nil
	}
}

func matches(want string) func(string) (bool, error) {
	return func(pw string) (bool, error) { return pw == want, nil }
}

type userOption func(*v1alpha1.User)

func newUser(o ...userOption) *v1alpha1.User {
	u := &v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "orders", UID: "uid",
			Annotations: map[string]string{meta.AnnotationKeyExternalName: "app_rw"}},
		Spec: v1alpha1.UserSpec{
			WriteConnectionSecretToReference: &xpv2.LocalSecretReference{Name: "orders-conn"},
			ProviderConfigReference:          &xpv2.ProviderConfigReference{Kind: "ProviderConfig", Name: "default"},
			ForProvider:                      v1alpha1.UserParameters{Database: "app", Privileges: v1alpha1.ReadWrite},
		},
	}
	for _, fn := range o {
		fn(u)
	}
	return u
}

func changedAt(t time.Time) userOption {
	return func(u *v1alpha1.User) { mt := metav1.NewTime(t); u.Status.AtProvider.PasswordChangedAt = &mt }
}

func observed(p v1alpha1.Privileges, at time.Time, trigger string) userOption {
	return func(u *v1alpha1.User) {
		changedAt(at)(u)
		u.Status.AtProvider.Username, u.Status.AtProvider.Privileges, u.Status.AtProvider.RotationTrigger = "app_rw", p, trigger
	}
}

func annotate(k, v string) userOption {
	return func(u *v1alpha1.User) { u.Annotations[k] = v }
}

func period(p string) userOption {
	return func(u *v1alpha1.User) { u.Spec.ForProvider.PasswordRotation = &v1alpha1.PasswordRotation{Period: p} }
}

func conditions(c ...xpv2.Condition) userOption {
	return func(u *v1alpha1.User) { u.SetConditions(c...) }
}

func deleted(at time.Time) userOption {
	return func(u *v1alpha1.User) { mt := metav1.NewTime(at); u.SetDeletionTimestamp(&mt) }
}

func username(n string) userOption {
	return func(u *v1alpha1.User) { u.Status.AtProvider.Username = n }
}

func TestObserve(t *testing.T) {
	type args struct {
		server   *fakeServer
		password string
		reread   func(context.Context) (string, error)
		cr       *v1alpha1.User
	}
	type want struct {
		o   managed.ExternalObservation
		cr  *v1alpha1.User
		err error
	}
	cases := map[string]struct {
		reason string
		args   args
		want   want
	}{
		"Missing": {
			reason: "A login that does not exist is reported as such, for Create.",
			args: args{
				server: &fakeServer{observe: func(xsql.Login) (*xsql.Observation, error) { return &xsql.Observation{}, nil }},
				cr:     newUser(),
			},
			want: want{o: managed.ExternalObservation{ResourceExists: false}, cr: newUser()},
		},
		"UpToDate": {
			reason: "A login whose password is the Secret's and whose privileges match is up to date, Available, and its details are published.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "pw",
				cr:       newUser(observed(v1alpha1.ReadWrite, now.Add(-time.Hour), "")),
			},
			want: want{
				o:  managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true, ConnectionDetails: details("pw")},
				cr: newUser(observed(v1alpha1.ReadWrite, now.Add(-time.Hour), ""), conditions(xpv2.Available())),
			},
		},
		"FirstSight": {
			reason: "The first time a password is seen to work, its time and the current rotate annotation are recorded.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "pw",
				cr:       newUser(annotate(v1alpha1.AnnotationRotatePassword, "1")),
			},
			want: want{
				o:  managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true, ConnectionDetails: details("pw")},
				cr: newUser(annotate(v1alpha1.AnnotationRotatePassword, "1"), observed(v1alpha1.ReadWrite, now, "1"), conditions(xpv2.Available())),
			},
		},
		"PasswordDiffers": {
			reason: "A login whose password is not the Secret's is not up to date, and not Available: the app cannot log in.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("other")},
				password: "pw",
				cr:       newUser(observed(v1alpha1.ReadWrite, now, "")),
			},
			want: want{
				o: managed.ExternalObservation{ResourceExists: true, Diff: "the connection Secret's password does not log in"},
				cr: newUser(observed(v1alpha1.ReadWrite, now, ""),
					conditions(xpv2.Unavailable().WithMessage("the connection Secret's password does not log in"))),
			},
		},
		"StaleCache": {
			reason: "A cached password that does not log in is read again from the API server before anything is replaced: the cache may lag a Secret just published.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "old",
				reread:   func(context.Context) (string, error) { return "pw", nil },
				cr:       newUser(observed(v1alpha1.ReadWrite, now, "")),
			},
			want: want{
				o:  managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true, ConnectionDetails: details("pw")},
				cr: newUser(observed(v1alpha1.ReadWrite, now, ""), conditions(xpv2.Available())),
			},
		},
		"RereadFails": {
			reason: "A failure to read the Secret again is returned rather than acted on.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "old",
				reread:   func(context.Context) (string, error) { return "", errBoom },
				cr:       newUser(observed(v1alpha1.ReadWrite, now, "")),
			},
			want: want{err: errBoom, cr: newUser(observed(v1alpha1.ReadWrite, now, ""))},
		},
		"NoSecret": {
			reason: "Without a password in the Secret (an adopted login, a deleted Secret) the login is not up to date.",
			args: args{
				server: &fakeServer{observe: exists()},
				cr:     newUser(),
			},
			want: want{
				o: managed.ExternalObservation{ResourceExists: true, Diff: "the connection Secret has no password"},
				cr: newUser(username("app_rw"), func(u *v1alpha1.User) { u.Status.AtProvider.Privileges = v1alpha1.ReadWrite },
					conditions(xpv2.Unavailable().WithMessage("the connection Secret has no password"))),
			},
		},
		"PrivilegeDrift": {
			reason: "Privilege drift makes the login not up to date; it still logs in, so it stays Available.",
			args: args{
				server:   &fakeServer{observe: exists("extra TRUNCATE on table public.t"), verify: matches("pw")},
				password: "pw",
				cr:       newUser(observed(v1alpha1.ReadWrite, now, "")),
			},
			want: want{
				o:  managed.ExternalObservation{ResourceExists: true, ConnectionDetails: details("pw"), Diff: "extra TRUNCATE on table public.t"},
				cr: newUser(observed(v1alpha1.ReadWrite, now, ""), conditions(xpv2.Available())),
			},
		},
		"RotationRequested": {
			reason: "A rotate annotation that differs from the last one acted on makes the login not up to date.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "pw",
				cr:       newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now, "1")),
			},
			want: want{
				o: managed.ExternalObservation{ResourceExists: true, ConnectionDetails: details("pw"),
					Diff: `rotation requested by annotation sql.database.example.com/rotate-password="2"`},
				cr: newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now, "1"), conditions(xpv2.Available())),
			},
		},
		"RotationDue": {
			reason: "A password older than the rotation period makes the login not up to date.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "pw",
				cr:       newUser(period("720h"), observed(v1alpha1.ReadWrite, now.Add(-720*time.Hour), "")),
			},
			want: want{
				o: managed.ExternalObservation{ResourceExists: true, ConnectionDetails: details("pw"),
					Diff: "rotation period 720h elapsed at 2026-11-23T12:00:00Z"},
				cr: newUser(period("720h"), observed(v1alpha1.ReadWrite, now.Add(-720*time.Hour), ""), conditions(xpv2.Available())),
			},
		},
		"RotationNotDue": {
			reason: "A password younger than the rotation period is left alone.",
			args: args{
				server:   &fakeServer{observe: exists(), verify: matches("pw")},
				password: "pw",
				cr:       newUser(period("720h"), observed(v1alpha1.ReadWrite, now.Add(-719*time.Hour), "")),
			},
			want: want{
				o:  managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true, ConnectionDetails: details("pw")},
				cr: newUser(period("720h"), observed(v1alpha1.ReadWrite, now.Add(-719*time.Hour), ""), conditions(xpv2.Available())),
			},
		},
		"AdminLogin": {
			reason: "The admin login itself is refused, so no User can strip the provider of its own privileges.",
			args: args{
				server: &fakeServer{},
				cr:     newUser(annotate(meta.AnnotationKeyExternalName, "postgres")),
			},
			want: want{
				err: errors.New(`refusing to manage login "postgres": it is the ProviderConfig's admin login`),
				cr:  newUser(annotate(meta.AnnotationKeyExternalName, "postgres")),
			},
		},
		"ObserveError": {
			reason: "A failure to observe is returned.",
			args: args{
				server: &fakeServer{observe: func(xsql.Login) (*xsql.Observation, error) { return nil, errBoom }},
				cr:     newUser(),
			},
			want: want{err: errBoom, cr: newUser()},
		},
		"Deleting": {
			reason: "A User being deleted only needs to know whether its login exists.",
			args: args{
				server: &fakeServer{observe: exists("anything")},
				cr:     newUser(deleted(now)),
			},
			want: want{o: managed.ExternalObservation{ResourceExists: true}, cr: newUser(deleted(now))},
		},
		"DeletingUnreachable": {
			reason: "A User being deleted whose server has been unreachable for longer than the abandon period lets go of its login.",
			args: args{
				server: &fakeServer{observe: func(xsql.Login) (*xsql.Observation, error) {
					return nil, &net.OpError{Op: "dial", Err: errBoom}
				}},
				cr: newUser(deleted(now.Add(-time.Hour))),
			},
			want: want{o: managed.ExternalObservation{ResourceExists: false}, cr: newUser(deleted(now.Add(-time.Hour)))},
		},
		"DeletingUnreachableBriefly": {
			reason: "A server unreachable for less than the abandon period is retried.",
			args: args{
				server: &fakeServer{observe: func(xsql.Login) (*xsql.Observation, error) {
					return nil, &net.OpError{Op: "dial", Err: errBoom}
				}},
				cr: newUser(deleted(now.Add(-time.Minute))),
			},
			want: want{err: &net.OpError{Op: "dial", Err: errBoom}, cr: newUser(deleted(now.Add(-time.Minute)))},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := &external{
				server: tc.args.server, password: tc.args.password, reread: tc.args.reread, admin: "postgres",
				record: event.NewNopRecorder(), now: func() time.Time { return now }, abandonAfter: 15 * time.Minute,
			}
			o, err := e.Observe(t.Context(), tc.args.cr)
			if diff := cmp.Diff(tc.want.err, err, test.EquateErrors()); diff != "" {
				t.Errorf("%s\ne.Observe(...): -want error, +got error:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.o, o); diff != "" {
				t.Errorf("%s\ne.Observe(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.cr, tc.args.cr, test.EquateConditions()); diff != "" {
				t.Errorf("%s\ne.Observe(...): -want User, +got User:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	type want struct {
		c       managed.ExternalCreation
		changes []string
		err     error
	}
	cases := map[string]struct {
		reason   string
		password string
		cr       *v1alpha1.User
		fail     error
		want     want
	}{
		"New": {
			reason: "A new login gets a generated password, published as a connection detail.",
			cr:     newUser(),
			want:   want{c: managed.ExternalCreation{ConnectionDetails: details("generated")}, changes: []string{"Create app_rw readWrite generated"}},
		},
		"Recreated": {
			reason:   "A login dropped out of band is re-created with the Secret's password, so apps keep working.",
			password: "pw",
			cr:       newUser(observed(v1alpha1.ReadWrite, now, "")),
			want:     want{c: managed.ExternalCreation{ConnectionDetails: details("pw")}, changes: []string{"Create app_rw readWrite pw"}},
		},
		"RecreatedDueForRotation": {
			reason:   "A re-created login due for rotation gets a new password.",
			password: "pw",
			cr:       newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now, "1")),
			want:     want{c: managed.ExternalCreation{ConnectionDetails: details("generated")}, changes: []string{"Create app_rw readWrite generated"}},
		},
		"DefaultPrivileges": {
			reason: "Unset privileges mean readWrite.",
			cr:     newUser(func(u *v1alpha1.User) { u.Spec.ForProvider.Privileges = "" }),
			want:   want{c: managed.ExternalCreation{ConnectionDetails: details("generated")}, changes: []string{"Create app_rw readWrite generated"}},
		},
		"Fails": {
			reason: "A failed create publishes nothing.",
			cr:     newUser(),
			fail:   errBoom,
			want:   want{changes: []string{"Create app_rw readWrite generated"}, err: errBoom},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &fakeServer{fail: tc.fail}
			e := &external{server: s, password: tc.password, record: event.NewNopRecorder(), now: func() time.Time { return now },
				newPassword: func() (string, error) { return "generated", nil }}
			c, err := e.Create(t.Context(), tc.cr)
			if diff := cmp.Diff(tc.want, want{c: c, changes: s.changes, err: err}, cmp.AllowUnexported(want{}), test.EquateErrors()); diff != "" {
				t.Errorf("%s\ne.Create(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	type args struct {
		observed   *xsql.Observation
		password   string
		passwordOK bool
		cr         *v1alpha1.User
		fail       error
	}
	type want struct {
		u       managed.ExternalUpdate
		changes []string
		cr      *v1alpha1.User
		err     error
	}
	ok := &xsql.Observation{Exists: true}
	cases := map[string]struct {
		reason string
		args   args
		want   want
	}{
		"ResetToSecret": {
			reason: "A login whose password changed out of band is reset to the Secret's; its age is kept.",
			args:   args{observed: ok, password: "pw", cr: newUser(observed(v1alpha1.ReadWrite, now.Add(-time.Hour), ""))},
			want: want{
				u: managed.ExternalUpdate{ConnectionDetails: details("pw")}, changes: []string{"SetPassword app_rw pw"},
				cr: newUser(observed(v1alpha1.ReadWrite, now.Add(-time.Hour), ""), conditions(xpv2.Available())),
			},
		},
		"Adopted": {
			reason: "An adopted login (no Secret yet) gets a generated password and its privileges repaired, privileges first.",
			args:   args{observed: &xsql.Observation{Exists: true, Drift: []string{"extra SUPERUSER"}}, cr: newUser()},
			want: want{
				u: managed.ExternalUpdate{ConnectionDetails: details("generated")}, changes: []string{"SetPrivileges app_rw", "SetPassword app_rw generated"},
				cr: newUser(observed(v1alpha1.ReadWrite, now, ""), conditions(xpv2.Available())),
			},
		},
		"PrivilegesOnly": {
			reason: "Privilege drift alone leaves the password alone.",
			args: args{observed: &xsql.Observation{Exists: true, Drift: []string{"missing INSERT"}}, password: "pw", passwordOK: true,
				cr: newUser(observed(v1alpha1.ReadOnly, now.Add(-time.Hour), ""))},
			want: want{
				u: managed.ExternalUpdate{ConnectionDetails: details("pw")}, changes: []string{"SetPrivileges app_rw"},
				cr: newUser(observed(v1alpha1.ReadWrite, now.Add(-time.Hour), ""), conditions(xpv2.Available())),
			},
		},
		"RotateOnDemand": {
			reason: "A rotate annotation sets a new password and records the annotation and time.",
			args: args{observed: ok, password: "pw", passwordOK: true,
				cr: newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now.Add(-time.Hour), "1"))},
			want: want{
				u: managed.ExternalUpdate{ConnectionDetails: details("generated")}, changes: []string{"SetPassword app_rw generated"},
				cr: newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now, "2"), conditions(xpv2.Available())),
			},
		},
		"RotateOnSchedule": {
			reason: "An elapsed period sets a new password and restarts the period.",
			args: args{observed: ok, password: "pw", passwordOK: true,
				cr: newUser(period("1h"), observed(v1alpha1.ReadWrite, now.Add(-2*time.Hour), ""))},
			want: want{
				u: managed.ExternalUpdate{ConnectionDetails: details("generated")}, changes: []string{"SetPassword app_rw generated"},
				cr: newUser(period("1h"), observed(v1alpha1.ReadWrite, now, ""), conditions(xpv2.Available())),
			},
		},
		"Fails": {
			reason: "A failed update records nothing and publishes nothing.",
			args: args{observed: ok, password: "pw", fail: errBoom,
				cr: newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now.Add(-time.Hour), "1"))},
			want: want{
				changes: []string{"SetPassword app_rw generated"}, err: errBoom,
				cr: newUser(annotate(v1alpha1.AnnotationRotatePassword, "2"), observed(v1alpha1.ReadWrite, now.Add(-time.Hour), "1")),
			},
		},
		"NotObserved": {
			reason: "Update without an observation of an existing login is an error.",
			args:   args{cr: newUser()},
			want:   want{err: errors.New("cannot update a login that was not observed"), cr: newUser()},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &fakeServer{fail: tc.args.fail}
			e := &external{server: s, password: tc.args.password, passwordOK: tc.args.passwordOK, observed: tc.args.observed,
				record: event.NewNopRecorder(), now: func() time.Time { return now }, newPassword: func() (string, error) { return "generated", nil }}
			u, err := e.Update(t.Context(), tc.args.cr)
			if diff := cmp.Diff(tc.want.err, err, test.EquateErrors()); diff != "" {
				t.Errorf("%s\ne.Update(...): -want error, +got error:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.u, u); diff != "" {
				t.Errorf("%s\ne.Update(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.changes, s.changes); diff != "" {
				t.Errorf("%s\ne.Update(...): -want changes, +got changes:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.cr, tc.args.cr, test.EquateConditions()); diff != "" {
				t.Errorf("%s\ne.Update(...): -want User, +got User:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	cases := map[string]struct {
		reason string
		fail   error
		want   error
	}{
		"Drops":  {reason: "Delete drops the login named by the external name."},
		"Failed": {reason: "A failed drop is returned for the next reconcile to retry.", fail: errBoom, want: errBoom},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &fakeServer{fail: tc.fail}
			cr := newUser(deleted(now))
			_, err := (&external{server: s}).Delete(t.Context(), cr)
			if diff := cmp.Diff(tc.want, err, test.EquateErrors()); diff != "" {
				t.Errorf("%s\ne.Delete(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff([]string{"Delete app_rw"}, s.changes); diff != "" {
				t.Errorf("%s\ne.Delete(...): -want changes, +got changes:\n%s", tc.reason, diff)
			}
			if c := cr.GetCondition(xpv2.TypeReady); c.Reason != xpv2.ReasonDeleting {
				t.Errorf("%s\ne.Delete(...) marks the User Deleting, got %+v", tc.reason, c)
			}
		})
	}
}

func TestConnect(t *testing.T) {
	pc := &v1alpha1.ProviderConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "default"},
		Spec: v1alpha1.ProviderConfigSpec{Engine: v1alpha1.PostgreSQL, Host: "db", Credentials: v1alpha1.ProviderCredentials{
			SecretRef: v1alpha1.AdminSecretReference{Name: "admin", UsernameKey: "user", PasswordKey: "pass"},
		}},
	}
	secrets := map[string]map[string][]byte{
		"admin":       {"user": []byte("postgres"), "pass": []byte("s3cret")},
		"orders-conn": {"password": []byte("pw")},
	}
	get := func(missing ...string) test.MockGetFn {
		return func(_ context.Context, key client.ObjectKey, obj client.Object) error {
			for _, m := range missing {
				if key.Name == m {
					return kerrors.NewNotFound(schema.GroupResource{}, m)
				}
			}
			switch o := obj.(type) {
			case *v1alpha1.ProviderConfig:
				pc.DeepCopyInto(o)
			case *corev1.Secret:
				o.Data = secrets[key.Name]
			}
			return nil
		}
	}
	type want struct {
		admin    xsql.Credential
		password string
		err      error
	}
	cases := map[string]struct {
		reason  string
		cr      *v1alpha1.User
		get     test.MockGetFn
		track   error
		want    want
		abandon bool
	}{
		"Connected": {
			reason: "Connect reads the admin login from the ProviderConfig's Secret and the password from the User's connection Secret.",
			cr:     newUser(),
			get:    get(),
			want:   want{admin: xsql.Credential{Username: "postgres", Password: "s3cret"}, password: "pw"},
		},
		"NoConnectionSecretYet": {
			reason: "A User whose connection Secret does not exist yet has no password.",
			cr:     newUser(),
			get:    get("orders-conn"),
			want:   want{admin: xsql.Credential{Username: "postgres", Password: "s3cret"}},
		},
		"ClusterProviderConfig": {
			reason: "Only the namespaced ProviderConfig kind exists.",
			cr:     newUser(func(u *v1alpha1.User) { u.Spec.ProviderConfigReference.Kind = "ClusterProviderConfig" }),
			get:    get(),
			want:   want{err: errors.New(`spec.providerConfigRef.kind: Unsupported value: "ClusterProviderConfig": supported values: "ProviderConfig"`)},
		},
		"TrackFails": {
			reason: "Usage is tracked before the ProviderConfig is used.",
			cr:     newUser(),
			get:    get(),
			track:  errBoom,
			want:   want{err: errors.Wrap(errBoom, "cannot track ProviderConfig usage")},
		},
		"NoProviderConfig": {
			reason: "A missing ProviderConfig is an error.",
			cr:     newUser(),
			get:    get("default"),
			want:   want{err: errors.Wrap(kerrors.NewNotFound(schema.GroupResource{}, "default"), `cannot get ProviderConfig "default"`)},
		},
		"NoProviderConfigWhileDeleting": {
			reason:  "A User being deleted whose ProviderConfig is gone lets go of its login instead of hanging.",
			cr:      newUser(deleted(now)),
			get:     get("default"),
			abandon: true,
		},
		"NoAdminSecretWhileDeleting": {
			reason:  "So does one whose admin Secret is gone.",
			cr:      newUser(deleted(now)),
			get:     get("admin"),
			abandon: true,
		},
		"NoConnectionSecretRef": {
			reason: "The password lives only in the connection Secret, so a User needs one.",
			cr:     newUser(func(u *v1alpha1.User) { u.Spec.WriteConnectionSecretToReference = nil }),
			get:    get(),
			want:   want{err: errors.New("spec.writeConnectionSecretToRef is required: the login's password lives only in that Secret")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var admin xsql.Credential
			c := &connector{
				kube:  &test.MockClient{MockGet: tc.get},
				usage: resource.ModernTrackerFn(func(context.Context, resource.ModernManaged) error { return tc.track }),
				newServer: func(_ *v1alpha1.ProviderConfig, _ xsql.Endpoint, a xsql.Credential) (Server, error) {
					admin = a
					return &fakeServer{}, nil
				},
				record: event.NewNopRecorder(),
				now:    func() time.Time { return now },
			}
			ext, err := c.Connect(t.Context(), tc.cr)
			if tc.abandon {
				o, err := ext.Observe(t.Context(), tc.cr)
				if err != nil || o.ResourceExists {
					t.Errorf("%s\nc.Connect(...).Observe(...) = %+v, %v: want a login that does not exist", tc.reason, o, err)
				}
				return
			}
			got := want{err: err}
			if e, ok := ext.(*external); ok {
				got.admin, got.password = admin, e.password
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), test.EquateErrors(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nc.Connect(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
