package fn

import (
	"encoding/json"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// StatefulSet runs the database servers. Each replica gets its own data
// volume, which outlives the StatefulSet: deleting or scaling down a
// Database never deletes data. It carries the digest of its spec, so that
// readiness can tell an observed StatefulSet from the one being applied.
func StatefulSet(p Params) *appsv1.StatefulSet {
	s := statefulSet(p)
	j, _ := json.Marshal(s.Spec) //nolint:errchkjson // A typed spec always marshals.
	s.Annotations = map[string]string{annotationSpecDigest: digest(j)}
	return s
}

func statefulSet(p Params) *appsv1.StatefulSet {
	podLabels := p.Labels("database")
	annotations := map[string]string{annotationConfigHash: p.ConfigHash}
	containers := []corev1.Container{server(p)}
	volumes := []corev1.Volume{{
		Name: configVolume,
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.ConfigMap()},
		}},
	}, tlsVolumeOf(p, keyCACert, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)}
	var inits []corev1.Container
	if p.Engine.Init != nil {
		inits = append(inits, initStep(p))
		volumes = append(volumes, corev1.Volume{
			Name:         runVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(mustQuantity("1Mi"))}},
		})
	}
	if p.Metrics {
		containers = append(containers, metricsExporter(p))
		annotations["prometheus.io/scrape"] = "true"
		annotations["prometheus.io/port"] = itoa(p.Engine.Exporter.Port)
	}

	replicas := ptr.To(p.Replicas)
	if p.LeaveReplicas {
		replicas = nil
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: p.StatefulSet(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            replicas,
			ServiceName:         p.HeadlessService(),
			Selector:            &metav1.LabelSelector{MatchLabels: p.Selector()},
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy:      updateStrategy(p),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: annotations},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To(p.Profile.TerminationGraceSeconds),
					SecurityContext:               podSecurityContext(p),
					Affinity:                      affinity(p),
					InitContainers:                inits,
					Containers:                    containers,
					Volumes:                       volumes,
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: dataVolume, Labels: p.ClaimLabels},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: p.StorageClass,
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: p.StorageSize},
					},
				},
			}},
		},
	}
}

// server is the database container.
func server(p Params) corev1.Container {
	e := p.Engine
	env := passwordEnv(p, e.PasswordEnv...)
	lit := maps.Clone(e.Env)
	maps.Copy(lit, e.ClientTLSEnv)
	if e.DataDirEnv != "" {
		lit[e.DataDirEnv] = p.Release.DataDir
	}
	env = append(env, literalEnv(lit)...)
	args := e.Args
	if e.PodArgs != nil {
		env = append(env, podEnv()...)
		args = append(slices.Clone(args), e.PodArgs(p.names)...)
	}

	mounts := []corev1.VolumeMount{
		{Name: dataVolume, MountPath: p.Release.DataMount, SubPath: p.Release.DataSubPath},
		{Name: configVolume, MountPath: e.ConfigDir, ReadOnly: true},
		tlsMount(),
	}
	if e.Init != nil {
		mounts = append(mounts, corev1.VolumeMount{Name: runVolume, MountPath: runDir})
	}
	return corev1.Container{
		Name:            serverContainer,
		Image:           p.Release.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            args,
		Ports:           []corev1.ContainerPort{{Name: e.PortName, ContainerPort: e.Port, Protocol: corev1.ProtocolTCP}},
		Env:             env,
		Resources:       p.Resources,
		VolumeMounts:    mounts,
		StartupProbe:    probe(e.StartupProbe, 10, 5, 90),
		LivenessProbe:   probe(e.LivenessProbe, 10, 5, 6),
		ReadinessProbe:  probe(e.ReadinessProbe, 5, 5, 3),
		SecurityContext: containerSecurityContext(),
	}
}

// initStep prepares each start of a pod in the server's image: the
// replication login's password file, and on an empty data volume of a pod
// but the first, a copy of the primary.
func initStep(p Params) corev1.Container {
	e := p.Engine
	env := append(podEnv(), passwordEnv(p, e.PasswordEnv...)...)
	lit := map[string]string{
		e.DataDirEnv:       p.Release.DataDir,
		"RUN_DIR":          runDir,
		"PRIMARY_HOST":     p.Host(),
		"PRIMARY_PORT":     itoa(e.Port),
		"REPLICATION_USER": replicationLogin,
	}
	maps.Copy(lit, e.ClientTLSEnv)
	env = append(env, literalEnv(lit)...)
	env = append(env,
		// After POD_INDEX, which it expands.
		corev1.EnvVar{Name: "SLOT", Value: p.SlotPrefix() + "$(POD_INDEX)"},
		// Optional: the login's Secret exists once the SQL provider created
		// the login; until then only a standby's first copy waits.
		corev1.EnvVar{Name: "REPLICATION_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.ReplicationUser()},
			Key:                  keyPassword,
			Optional:             ptr.To(true),
		}}},
	)
	return corev1.Container{
		Name:            "init",
		Image:           p.Release.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         e.Init,
		Env:             env,
		Resources:       p.Resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: dataVolume, MountPath: p.Release.DataMount, SubPath: p.Release.DataSubPath},
			{Name: configVolume, MountPath: e.ConfigDir, ReadOnly: true},
			{Name: runVolume, MountPath: runDir},
			tlsMount(),
		},
		SecurityContext: containerSecurityContext(),
	}
}

// podEnv tells a container which pod of the StatefulSet it runs in.
func podEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	return []corev1.EnvVar{
		field("POD_NAME", "metadata.name"),
		field("POD_INDEX", "metadata.labels['"+appsv1.PodIndexLabel+"']"),
	}
}

// metricsExporter is the Prometheus exporter sidecar. It logs in as the
// monitoring login, never the superuser, with the password from the login's
// Secret. That Secret exists only once the SQL provider created the login,
// after the server started: the variable is optional, so the pod starts
// without it, and the liveness probe restarts the exporter until it logs in
// (an exporter reads its password only when it starts).
func metricsExporter(p Params) corev1.Container {
	x := p.Engine.Exporter
	return corev1.Container{
		Name:            "metrics",
		Image:           x.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            x.Args,
		Ports:           []corev1.ContainerPort{{Name: "metrics", ContainerPort: x.Port, Protocol: corev1.ProtocolTCP}},
		Env: append([]corev1.EnvVar{{Name: x.PasswordEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.MonitoringUser()},
			Key:                  keyPassword,
			Optional:             ptr.To(true),
		}}}}, literalEnv(x.Env)...),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("10m"), corev1.ResourceMemory: mustQuantity("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: mustQuantity("100m"), corev1.ResourceMemory: mustQuantity("64Mi")},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/metrics", Port: intstr.FromString("metrics")}},
			PeriodSeconds: 30, TimeoutSeconds: 5, FailureThreshold: 3,
		},
		// Two minutes without logging in: the Secret appeared after the
		// exporter started, or the server is down (the exporter then
		// restarts along with it, which costs nothing). Well within
		// DatabaseInstanceDown's 5 minutes, so a new Database's first
		// start does not fire it.
		LivenessProbe:   probe(exporterUp(x), 30, 10, 4),
		VolumeMounts:    []corev1.VolumeMount{{Name: configVolume, MountPath: p.Engine.ConfigDir, ReadOnly: true}, tlsMount()},
		SecurityContext: containerSecurityContext(),
	}
}

// exporterUp is the exporter's liveness command: its own scrape says it is
// logged in. The exporter images are busybox, with sh, wget and grep.
func exporterUp(x exporter) []string {
	return []string{"sh", "-c", "wget -q -O - http://127.0.0.1:" + itoa(x.Port) + "/metrics | grep -q '^" + x.Up + " 1$'"}
}

// passwordEnv sets each named variable from the Secret's password key: the
// password never appears as a literal anywhere but the Secret.
func passwordEnv(p Params, names ...string) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, len(names))
	for _, n := range names {
		env = append(env, corev1.EnvVar{Name: n, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.Secret()},
			Key:                  keyPassword,
		}}})
	}
	return env
}

// literalEnv returns variables sorted by name, so output is stable.
func literalEnv(m map[string]string) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		env = append(env, corev1.EnvVar{Name: k, Value: m[k]})
	}
	return env
}

func probe(cmd []string, period, timeout, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds:    period,
		TimeoutSeconds:   timeout,
		FailureThreshold: failures,
	}
}

// podSecurityContext passes the restricted Pod Security Standard. fsGroup
// makes new volumes writable by the server's user.
func podSecurityContext(p Params) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:        ptr.To(true),
		RunAsUser:           ptr.To(p.Engine.UID),
		RunAsGroup:          ptr.To(p.Engine.UID),
		FSGroup:             ptr.To(p.Engine.UID),
		FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// affinity prefers replicas on different nodes where the profile asks for it.
// It is a preference, so a one-node cluster still runs every replica.
func affinity(p Params) *corev1.Affinity {
	if !p.Profile.SpreadReplicas {
		return nil
	}
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: p.Selector()},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}

// updateStrategy rolls the pods highest ordinal first, unless the SQL
// provider rolls them: then standbys first, and the primary after a
// switchover, whatever its ordinal.
func updateStrategy(p Params) appsv1.StatefulSetUpdateStrategy {
	if p.ProviderRolls {
		return appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	}
	return appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}
}
