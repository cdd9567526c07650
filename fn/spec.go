package fn

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// maxNameLength keeps every composed name within Kubernetes' limits: a
// StatefulSet's pods carry a controller-revision-hash label of name-hash
// (63 characters at most) and a CronJob's name may be 52 at most; ours adds
// "-backup".
const maxNameLength = 45

var (
	retentionRE     = regexp.MustCompile(`^[1-9][0-9]*d$`)
	dnsLabelRE      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	restoreBackupRE = regexp.MustCompile(`^(latest|[A-Za-z0-9_]+-[0-9]{8}T[0-9]{6}Z\.sql\.gz)$`)
)

// defaultVerifySchedule is Sundays at 04:00 UTC, after the nightly backup.
const defaultVerifySchedule = "0 4 * * 0"

// Decode reads the observed Database from its unstructured content. It does
// not validate.
func Decode(u map[string]any) (*v1.Database, error) {
	db := &v1.Database{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, db); err != nil {
		return nil, err
	}
	return db, nil
}

// Default applies the XRD's schema defaults. The apiserver applies them too;
// the function repeats them for Databases created before a default existed
// and for renders without --xrd.
func Default(s *v1.DatabaseSpec) {
	if s.Replicas == nil {
		s.Replicas = ptr.To[int32](1)
	}
	if s.Environment == "" {
		s.Environment = v1.Development
	}
	if s.Backup == nil {
		s.Backup = &v1.Backup{}
	}
	if s.Backup.Schedule == "" {
		s.Backup.Schedule = "0 2 * * *"
	}
	if s.Backup.Retention == "" {
		s.Backup.Retention = "7d"
	}
	if v := s.Backup.Verify; v != nil && v.Schedule == "" {
		v.Schedule = defaultVerifySchedule
	}
	if s.Monitoring == nil {
		s.Monitoring = &v1.Monitoring{}
	}
	if s.Restore != nil && s.Restore.Backup == "" {
		s.Restore.Backup = "latest"
	}
}

// Validate checks a defaulted Database as the XRD's schema and CEL rules do,
// for Databases that got past them (created before a rule existed), plus what
// only the function can check: that the schedule parses as Kubernetes parses
// it and that the name leaves room for composed names. Transition rules
// (immutable type and class, no shrinking) need the old object and stay with
// the apiserver.
func Validate(db *v1.Database) field.ErrorList {
	var errs field.ErrorList
	s := db.Spec
	sp := field.NewPath("spec")

	if n := db.GetName(); len(n) > maxNameLength {
		errs = append(errs, field.TooLong(field.NewPath("metadata", "name"), n, maxNameLength))
	}

	e, ok := engines[s.Type]
	switch {
	case !ok:
		errs = append(errs, field.NotSupported(sp.Child("type"), s.Type, []v1.Engine{v1.MySQL, v1.PostgreSQL}))
	case e.Versions[s.Version].Image == "":
		errs = append(errs, field.NotSupported(sp.Child("version"), s.Version, sortedKeys(e.Versions)))
	}

	if r := *s.Replicas; r < 1 || r > 10 {
		errs = append(errs, field.Invalid(sp.Child("replicas"), r, "must be between 1 and 10"))
	}
	if _, ok := profiles[s.Environment]; !ok {
		errs = append(errs, field.NotSupported(sp.Child("environment"), s.Environment, []v1.Environment{v1.Development, v1.Staging, v1.Production}))
	}
	if s.Environment == v1.Production && *s.Replicas < 2 {
		errs = append(errs, field.Invalid(sp.Child("replicas"), *s.Replicas, "production databases need at least 2 replicas"))
	}

	if q, err := resource.ParseQuantity(s.Storage.Size); err != nil || q.Sign() <= 0 {
		errs = append(errs, field.Invalid(sp.Child("storage", "size"), s.Storage.Size, "must be a positive quantity such as 20Gi"))
	}

	errs = append(errs, validateResources(sp.Child("resources"), s)...)

	if b := s.Backup; b.Enabled {
		if _, err := cron.ParseStandard(b.Schedule); err != nil {
			errs = append(errs, field.Invalid(sp.Child("backup", "schedule"), b.Schedule, err.Error()))
		}
		if strings.HasPrefix(b.Schedule, "TZ=") || strings.HasPrefix(b.Schedule, "CRON_TZ=") {
			errs = append(errs, field.Invalid(sp.Child("backup", "schedule"), b.Schedule, "schedules run in UTC: time zones are not supported"))
		}
		if !retentionRE.MatchString(b.Retention) {
			errs = append(errs, field.Invalid(sp.Child("backup", "retention"), b.Retention, "must be a number of days such as 7d"))
		}
	}
	errs = append(errs, validateReplicas(sp, s)...)
	if to, ok := db.GetAnnotations()[AnnotationSwitchoverTo]; ok {
		if n := podOrdinal(db.GetName(), to); n < 0 || n >= int(*s.Replicas) {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(AnnotationSwitchoverTo), to,
				fmt.Sprintf("must name a pod of this Database: %s-0 to %s-%d", db.GetName(), db.GetName(), *s.Replicas-1)))
		}
	}
	if r := s.Restore; r != nil {
		switch fb := r.FromBackup; {
		case (r.From == "") == (fb == nil):
			errs = append(errs, field.Invalid(sp.Child("restore"), "", "set exactly one of from (a Database that exists) and fromBackup (backups in the bucket)"))
		case fb != nil && (len(fb.Database) > maxNameLength || !dnsLabelRE.MatchString(fb.Database)):
			errs = append(errs, field.Invalid(sp.Child("restore", "fromBackup", "database"), fb.Database, "must be the name of a Database, in this namespace, whose backups are in the bucket"))
		case fb == nil && (len(r.From) > maxNameLength || !dnsLabelRE.MatchString(r.From)):
			errs = append(errs, field.Invalid(sp.Child("restore", "from"), r.From, "must be the name of a Database in this namespace"))
		}
		if !restoreBackupRE.MatchString(r.Backup) {
			errs = append(errs, field.Invalid(sp.Child("restore", "backup"), r.Backup, "must be latest or a backup file name such as app-20261122T020000Z.sql.gz"))
		}
	}
	return errs
}

// ValidateRestoreSource checks the Database spec.restore.from names, once
// Crossplane supplied it: a backup only restores into a Database of the same
// type (a MySQL dump does not load into PostgreSQL).
func ValidateRestoreSource(db, src *v1.Database) *field.Error {
	if src == nil || src.Spec.Type == db.Spec.Type {
		return nil
	}
	return field.Invalid(field.NewPath("spec", "restore", "from"), src.GetName(),
		fmt.Sprintf("is a %s Database and this one %s: a backup only restores into the same type", src.Spec.Type, db.Spec.Type))
}

func validateResources(p *field.Path, s v1.DatabaseSpec) field.ErrorList {
	r := s.Resources
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if s.Environment == v1.Production && (r.Limits == nil || (r.Limits.CPU == "" && r.Limits.Memory == "")) {
		errs = append(errs, field.Required(p.Child("limits"), "production databases that set resources must set limits"))
	}
	req := quantities(p.Child("requests"), r.Requests, &errs)
	lim := quantities(p.Child("limits"), r.Limits, &errs)
	for _, k := range []string{"cpu", "memory"} {
		rq, okr := req[k]
		lq, okl := lim[k]
		if okr && okl && rq.Cmp(lq) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests", k), rq.String(), fmt.Sprintf("must not be more than limits.%s %s", k, lq.String())))
		}
	}
	return errs
}

// quantities parses a ResourceList, appending an error for each bad quantity.
func quantities(p *field.Path, l *v1.ResourceList, errs *field.ErrorList) map[string]resource.Quantity {
	out := map[string]resource.Quantity{}
	if l == nil {
		return out
	}
	for _, kv := range [][2]string{{"cpu", l.CPU}, {"memory", l.Memory}} {
		k, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			*errs = append(*errs, field.Invalid(p.Child(k), v, "must be a positive quantity"))
			continue
		}
		out[k] = q
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// validateReplicas checks autoscaling, replication and the logins every
// Database has.
func validateReplicas(sp *field.Path, s v1.DatabaseSpec) field.ErrorList {
	var errs field.ErrorList
	if a := s.Autoscaling; a != nil {
		ap := sp.Child("autoscaling")
		if a.MinReplicas < 1 || a.MaxReplicas > 10 || a.MinReplicas > a.MaxReplicas {
			errs = append(errs, field.Invalid(ap.Child("minReplicas"), a.MinReplicas, fmt.Sprintf("must be at least 1 and at most maxReplicas (%d), at most 10", a.MaxReplicas)))
		}
		if a.TargetCPUUtilization == nil && a.TargetMemoryUtilization == nil {
			errs = append(errs, field.Required(ap, "set targetCPUUtilization, targetMemoryUtilization or both"))
		}
		if s.Environment == v1.Production && a.MinReplicas < 2 {
			errs = append(errs, field.Invalid(ap.Child("minReplicas"), a.MinReplicas, "production databases need at least 2 replicas"))
		}
	}
	if r := s.Replication; r != nil && r.Synchronous != nil && (*r.Synchronous < 0 || *r.Synchronous >= *s.Replicas) {
		errs = append(errs, field.Invalid(sp.Child("replication", "synchronous"), *r.Synchronous, "at most replicas - 1 standbys can have a commit"))
	}
	for i, u := range s.Users {
		if u.Name == appLogin || u.Name == replicationLogin || u.Name == monitoringLogin {
			errs = append(errs, field.Invalid(sp.Child("users").Index(i).Child("name"), u.Name, "is a login every Database has"))
		}
	}
	if n := s.Network; n != nil {
		for i, f := range n.From {
			fp := sp.Child("network", "from").Index(i)
			if f.NamespaceSelector == nil && f.PodSelector == nil {
				errs = append(errs, field.Required(fp, "set namespaceSelector, podSelector or both"))
			}
			o := metav1validation.LabelSelectorValidationOptions{}
			errs = append(errs, metav1validation.ValidateLabelSelector(f.NamespaceSelector, o, fp.Child("namespaceSelector"))...)
			errs = append(errs, metav1validation.ValidateLabelSelector(f.PodSelector, o, fp.Child("podSelector"))...)
		}
	}
	return errs
}

// podOrdinal is the ordinal of pod, one of StatefulSet name's pods
// (<name>-<ordinal>), or -1.
func podOrdinal(name, pod string) int {
	n, ok := strings.CutPrefix(pod, name+"-")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" || (len(n) > 1 && n[0] == '0') {
		return -1
	}
	i, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return i
}
