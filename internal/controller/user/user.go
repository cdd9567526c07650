// Package user reconciles Users: database logins with a generated password
// and least privilege on one database, kept in sync by crossplane-runtime's
// managed reconciler through the connector and external client here.
package user

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/controller/providerconfig"
)

// Event reasons of the external client, besides the managed reconciler's.
const (
	ReasonPasswordRotated    event.Reason = "PasswordRotated"
	ReasonPasswordReset      event.Reason = "PasswordReset"
	ReasonPrivilegesRepaired event.Reason = "PrivilegesRepaired"
	ReasonLoginAbandoned     event.Reason = "LoginAbandoned"
	// ReasonTLSReload: the server presented an older certificate than its
	// TLS Secret's, and the provider reloaded its TLS.
	ReasonTLSReload event.Reason = "TLSReload"
)

// A Server manages logins on one database server. The engine clients in
// internal/clients implement it.
type Server interface {
	// Observe reads whether login l exists, its password verifier and how
	// its privileges differ from l's, in one query once warmed up.
	Observe(ctx context.Context, l xsql.Login) (*xsql.Observation, error)

	// VerifyPassword reports whether password logs in as the login o
	// observed, without logging in.
	VerifyPassword(ctx context.Context, l xsql.Login, o *xsql.Observation, password string) (bool, error)

	// Create creates the login o found missing, with password and l's
	// privileges.
	Create(ctx context.Context, l xsql.Login, o *xsql.Observation, password string) error

	// SetPassword sets the login's password.
	SetPassword(ctx context.Context, l xsql.Login, password string) error

	// SetPrivileges repairs the privilege drift o found.
	SetPrivileges(ctx context.Context, l xsql.Login, o *xsql.Observation) error

	// Delete drops the login and what it owns.
	Delete(ctx context.Context, l xsql.Login) error

	// ConnectionDetails are what an app needs to log in as cred.
	ConnectionDetails(database string, cred xsql.Credential) map[string][]byte
}

// A NewServerFn returns the Server a ProviderConfig names, at ep, managed
// as admin. A Server that is also an xsql.TLSServer has its TLS reloaded
// when it presents another certificate than ep's.
type NewServerFn func(pc *v1alpha1.ProviderConfig, ep xsql.Endpoint, admin xsql.Credential) (Server, error)

// A connector connects a User to the server its ProviderConfig names.
type connector struct {
	kube client.Client
	// uncached reads connection Secrets from the API server when the
	// cache's copy does not log in: it may lag a Secret published moments
	// ago.
	uncached  client.Reader
	usage     resource.ModernTracker
	newServer NewServerFn
	record    event.Recorder
	now       func() time.Time
	// reloads remembers the servers seen presenting their certificate.
	reloads *xsql.TLSReloads

	// abandonAfter is how long a User may wait to be deleted while its
	// server is unreachable before the provider gives up on dropping the
	// login.
	abandonAfter time.Duration
}

// NewConnector returns the connector of the User controller: it reads
// ProviderConfigs and Secrets through kube (a manager's cached client), a
// connection Secret whose password does not log in again through uncached,
// records ProviderConfig usage, and reaches servers through newServer. A
// User being deleted whose server stays unreachable for abandonAfter is let
// go.
func NewConnector(kube client.Client, uncached client.Reader, newServer NewServerFn, record event.Recorder, abandonAfter time.Duration) managed.TypedExternalConnector[*v1alpha1.User] {
	return &connector{
		kube:         kube,
		uncached:     uncached,
		usage:        resource.NewProviderConfigUsageTracker(kube, &v1alpha1.ProviderConfigUsage{}),
		newServer:    newServer,
		record:       record,
		now:          time.Now,
		reloads:      &xsql.TLSReloads{},
		abandonAfter: abandonAfter,
	}
}

// Connect reads the ProviderConfig, its admin Secret and the User's
// connection Secret, whose password is the one the login should have.
func (c *connector) Connect(ctx context.Context, cr *v1alpha1.User) (managed.TypedExternalClient[*v1alpha1.User], error) {
	ref := cr.GetProviderConfigReference()
	if ref == nil {
		return nil, errors.New("spec.providerConfigRef is required")
	}
	if ref.Kind != v1alpha1.ProviderConfigKind {
		return nil, errors.Errorf("spec.providerConfigRef.kind: Unsupported value: %q: supported values: %q", ref.Kind, v1alpha1.ProviderConfigKind)
	}
	if err := c.usage.Track(ctx, cr); err != nil {
		return nil, errors.Wrap(err, "cannot track ProviderConfig usage")
	}

	pc := &v1alpha1.ProviderConfig{}
	if err := c.kube.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: ref.Name}, pc); err != nil {
		if kerrors.IsNotFound(err) && meta.WasDeleted(cr) {
			return c.abandon(cr, fmt.Sprintf("ProviderConfig %q is gone", ref.Name)), nil
		}
		return nil, errors.Wrapf(err, "cannot get ProviderConfig %q", ref.Name)
	}
	admin, err := providerconfig.Admin(ctx, c.kube, pc)
	if err != nil {
		if kerrors.IsNotFound(err) && meta.WasDeleted(cr) {
			return c.abandon(cr, fmt.Sprintf("admin Secret %q is gone", pc.Spec.Credentials.SecretRef.Name)), nil
		}
		return nil, err
	}
	ep, err := providerconfig.Endpoint(ctx, c.kube, pc)
	if err != nil {
		return nil, err
	}
	srv, err := c.newServer(pc, ep, admin)
	if err != nil {
		return nil, errors.Wrapf(err, "cannot connect to the server of ProviderConfig %q", pc.GetName())
	}
	if t, ok := srv.(xsql.TLSServer); ok && !meta.WasDeleted(cr) {
		// Not a reason to stop managing the login: the server still
		// presents a certificate the CA verifies.
		if ok, err := c.reloads.Ensure(ctx, ep, t); err != nil {
			c.record.Event(cr, event.Warning(ReasonTLSReload, errors.Wrapf(err, "cannot make the server of ProviderConfig %q present its new certificate", pc.GetName())))
		} else if !ok {
			c.record.Event(cr, event.Normal(ReasonTLSReload, "the server presents an older certificate after reloading its TLS: its files are not updated yet, trying again next reconcile"))
		}
	}

	current, err := currentPassword(ctx, c.kube, cr)
	if err != nil {
		return nil, err
	}
	e := &external{
		server: srv, password: current, admin: admin.Username,
		record: c.record, now: c.now, newPassword: xsql.GeneratePassword, abandonAfter: c.abandonAfter,
	}
	if c.uncached != nil {
		e.reread = func(ctx context.Context) (string, error) { return currentPassword(ctx, c.uncached, cr) }
	}
	return e, nil
}

// currentPassword reads the password from the User's connection Secret:
// empty when there is no Secret or no password in it yet.
func currentPassword(ctx context.Context, kube client.Reader, cr *v1alpha1.User) (string, error) {
	ref := cr.GetWriteConnectionSecretToReference()
	if ref == nil {
		return "", errors.New("spec.writeConnectionSecretToRef is required: the login's password lives only in that Secret")
	}
	s := &corev1.Secret{}
	err := kube.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: ref.Name}, s)
	if kerrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", errors.Wrapf(err, "cannot get connection Secret %q", ref.Name)
	}
	return string(s.Data[v1alpha1.ConnectionKeyPassword]), nil
}

func (c *connector) abandon(cr *v1alpha1.User, why string) managed.TypedExternalClient[*v1alpha1.User] {
	return managed.TypedExternalClientFns[*v1alpha1.User]{
		ObserveFn: func(_ context.Context, _ *v1alpha1.User) (managed.ExternalObservation, error) {
			c.record.Event(cr, event.Warning(ReasonLoginAbandoned,
				errors.Errorf("%s: the login %q may be left on the server", why, meta.GetExternalName(cr))))
			return managed.ExternalObservation{ResourceExists: false}, nil
		},
		DisconnectFn: func(context.Context) error { return nil },
	}
}

// An external keeps one User's login in sync. The managed reconciler makes
// one per reconcile: Observe runs first and leaves what it found for
// Create, Update and Delete.
type external struct {
	server Server
	// password is the one in the User's connection Secret, empty when
	// there is none.
	password string
	// admin is the ProviderConfig's login, which no User may manage.
	admin string

	// reread reads the connection Secret's password from the API server,
	// bypassing the cache; nil when there is no uncached reader.
	reread func(ctx context.Context) (string, error)

	record       event.Recorder
	now          func() time.Time
	newPassword  func() (string, error)
	abandonAfter time.Duration

	login      xsql.Login
	observed   *xsql.Observation
	passwordOK bool
}

var _ managed.TypedExternalClient[*v1alpha1.User] = &external{}

// loginOf is the login a User asks for.
func loginOf(cr *v1alpha1.User) xsql.Login {
	p := cr.Spec.ForProvider.Privileges
	if p == "" {
		p = v1alpha1.ReadWrite
	}
	return xsql.Login{Name: meta.GetExternalName(cr), Database: cr.Spec.ForProvider.Database, Privileges: p}
}

// Observe compares the login with the User in one query: it does not exist
// (Create), or the connection Secret's password does not log in, its
// privileges differ, or a rotation is due or requested (Update).
func (e *external) Observe(ctx context.Context, cr *v1alpha1.User) (managed.ExternalObservation, error) {
	e.login = loginOf(cr)
	if e.login.Name == e.admin {
		return managed.ExternalObservation{}, errors.Errorf("refusing to manage login %q: it is the ProviderConfig's admin login", e.login.Name)
	}
	o, err := e.server.Observe(ctx, e.login)
	if err != nil {
		if e.giveUp(cr, err) {
			return managed.ExternalObservation{ResourceExists: false}, nil
		}
		return managed.ExternalObservation{}, err
	}
	e.observed = o
	if !o.Exists {
		return managed.ExternalObservation{ResourceExists: false}, nil
	}
	if meta.WasDeleted(cr) {
		return managed.ExternalObservation{ResourceExists: true}, nil
	}

	var diff []string
	why := e.verifyPassword(ctx, o)
	if why != "" && e.reread != nil {
		// The cache may lag a Secret published moments ago: ask the API
		// server before replacing a password.
		fresh, err := e.reread(ctx)
		if err != nil {
			return managed.ExternalObservation{}, err
		}
		if fresh != e.password {
			e.password = fresh
			why = e.verifyPassword(ctx, o)
		}
	}
	if why != "" {
		diff = append(diff, why)
	}

	at := &cr.Status.AtProvider
	at.Username = e.login.Name
	if e.passwordOK && at.PasswordChangedAt == nil {
		// The first sight of a password: Create's status is not persisted,
		// and an adopted login's age is unknown.
		t := metav1.NewTime(e.now())
		at.PasswordChangedAt, at.RotationTrigger = &t, cr.GetAnnotations()[v1alpha1.AnnotationRotatePassword]
	}
	rotate, err := e.rotation(cr)
	if err != nil {
		return managed.ExternalObservation{}, err
	}
	if rotate != "" {
		diff = append(diff, rotate)
	}
	if len(o.Drift) == 0 {
		at.Privileges = e.login.Privileges
	}
	diff = append(diff, o.Drift...)

	var details managed.ConnectionDetails
	if e.passwordOK {
		details = e.server.ConnectionDetails(e.login.Database, xsql.Credential{Username: e.login.Name, Password: e.password})
		cr.SetConditions(xpv2.Available())
	} else {
		cr.SetConditions(xpv2.Unavailable().WithMessage(diff[0]))
	}
	return managed.ExternalObservation{
		ResourceExists:    true,
		ResourceUpToDate:  len(diff) == 0,
		ConnectionDetails: details,
		Diff:              strings.Join(diff, "; "),
	}, nil
}

// verifyPassword sets passwordOK and says why the connection Secret's
// password does not log in, or "".
func (e *external) verifyPassword(ctx context.Context, o *xsql.Observation) string {
	e.passwordOK = false
	if e.password == "" {
		return "the connection Secret has no password"
	}
	ok, err := e.server.VerifyPassword(ctx, e.login, o, e.password)
	switch {
	case err != nil:
		return "cannot verify the password: " + err.Error()
	case !ok:
		return "the connection Secret's password does not log in"
	}
	e.passwordOK = true
	return ""
}

// rotation says why the password must be replaced now, or "".
func (e *external) rotation(cr *v1alpha1.User) (string, error) {
	at := cr.Status.AtProvider
	if t := cr.GetAnnotations()[v1alpha1.AnnotationRotatePassword]; t != "" && t != at.RotationTrigger {
		return fmt.Sprintf("rotation requested by annotation %s=%q", v1alpha1.AnnotationRotatePassword, t), nil
	}
	r := cr.Spec.ForProvider.PasswordRotation
	if r == nil || r.Period == "" || at.PasswordChangedAt == nil {
		return "", nil
	}
	period, err := time.ParseDuration(r.Period)
	if err != nil {
		return "", errors.Wrapf(err, "invalid spec.forProvider.passwordRotation.period %q", r.Period)
	}
	if due := at.PasswordChangedAt.Add(period); !e.now().Before(due) {
		return fmt.Sprintf("rotation period %s elapsed at %s", r.Period, due.UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

// giveUp reports whether a User being deleted has waited long enough for an
// unreachable server: then the provider stops trying to drop the login, so
// that deleting a Database and its Users together cannot hang forever.
func (e *external) giveUp(cr *v1alpha1.User, err error) bool {
	if !meta.WasDeleted(cr) || !unreachable(err) || e.now().Sub(cr.GetDeletionTimestamp().Time) < e.abandonAfter {
		return false
	}
	e.record.Event(cr, event.Warning(ReasonLoginAbandoned,
		errors.Wrapf(err, "server unreachable for %s while deleting: the login %q may be left on it", e.abandonAfter, e.login.Name)))
	return true
}

func unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, context.DeadlineExceeded)
}

// Create creates the login. A login re-created after an out-of-band drop
// gets the password the connection Secret already holds, so apps keep
// working; a new User, or one due for rotation, gets a new password.
func (e *external) Create(ctx context.Context, cr *v1alpha1.User) (managed.ExternalCreation, error) {
	pw := e.password
	rotate, err := e.rotation(cr)
	if err != nil {
		return managed.ExternalCreation{}, err
	}
	if pw == "" || rotate != "" {
		if pw, err = e.newPassword(); err != nil {
			return managed.ExternalCreation{}, err
		}
	}
	l := loginOf(cr)
	if err := e.server.Create(ctx, l, e.observed, pw); err != nil {
		return managed.ExternalCreation{}, err
	}
	return managed.ExternalCreation{
		ConnectionDetails: e.server.ConnectionDetails(l.Database, xsql.Credential{Username: l.Name, Password: pw}),
	}, nil
}

// Update repairs what Observe found: privileges first, then the password.
// A rotation sets a new password; a login whose password differs from the
// connection Secret's is reset to the Secret's (apps keep working), or to a
// new one when the Secret has none.
func (e *external) Update(ctx context.Context, cr *v1alpha1.User) (managed.ExternalUpdate, error) {
	l := loginOf(cr)
	if e.observed == nil || !e.observed.Exists {
		return managed.ExternalUpdate{}, errors.New("cannot update a login that was not observed")
	}
	if len(e.observed.Drift) > 0 {
		if err := e.server.SetPrivileges(ctx, l, e.observed); err != nil {
			return managed.ExternalUpdate{}, err
		}
		e.record.Event(cr, event.Normal(ReasonPrivilegesRepaired, "Repaired privileges: "+strings.Join(e.observed.Drift, "; ")))
	}

	rotate, err := e.rotation(cr)
	if err != nil {
		return managed.ExternalUpdate{}, err
	}
	pw, fresh := e.password, false
	if rotate != "" || pw == "" {
		if pw, err = e.newPassword(); err != nil {
			return managed.ExternalUpdate{}, err
		}
		fresh = true
	}
	if fresh || !e.passwordOK {
		if err := e.server.SetPassword(ctx, l, pw); err != nil {
			return managed.ExternalUpdate{}, err
		}
	}

	at := &cr.Status.AtProvider
	switch {
	case rotate != "":
		e.record.Event(cr, event.Normal(ReasonPasswordRotated, "Rotated the password: "+rotate))
	case fresh:
		e.record.Event(cr, event.Normal(ReasonPasswordReset, "Set a new password: the connection Secret had none"))
	case !e.passwordOK:
		e.record.Event(cr, event.Normal(ReasonPasswordReset, "Reset the login's password to the connection Secret's"))
	}
	if fresh || at.PasswordChangedAt == nil {
		t := metav1.NewTime(e.now())
		at.PasswordChangedAt = &t
		at.RotationTrigger = cr.GetAnnotations()[v1alpha1.AnnotationRotatePassword]
	}
	at.Username, at.Privileges = l.Name, l.Privileges
	cr.SetConditions(xpv2.Available())
	return managed.ExternalUpdate{
		ConnectionDetails: e.server.ConnectionDetails(l.Database, xsql.Credential{Username: l.Name, Password: pw}),
	}, nil
}

// Delete drops the login. The managed reconciler observes again and
// removes its finalizer once the login is gone.
func (e *external) Delete(ctx context.Context, cr *v1alpha1.User) (managed.ExternalDelete, error) {
	cr.SetConditions(xpv2.Deleting())
	return managed.ExternalDelete{}, e.server.Delete(ctx, loginOf(cr))
}

// Disconnect does nothing: connection pools outlive a reconcile.
func (e *external) Disconnect(_ context.Context) error {
	return nil
}
