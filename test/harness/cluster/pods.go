//go:build e2e

package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/servers"
)

// HostNamespace is the namespace whose Job pods kwok starts but does not
// complete: a test runs each on this machine with RunPod, and its exit
// code becomes the pod's phase, so the Job controller, Crossplane and the
// function see a real script's outcome.
const HostNamespace = "on-host"

// podTimeout bounds one pod run on the host.
const podTimeout = 5 * time.Minute

// hostImages are the in-image paths a pod's commands name, per image, and
// where this machine has the same program: what RunPod runs instead of the
// image. The version is the image's tag, checked against the program's.
var hostImages = map[string]struct {
	version string
	paths   map[string]string
}{
	"docker.io/rclone/rclone:1.60.1": {"rclone v1.60.1", map[string]string{"/usr/local/bin/rclone": "rclone"}},
}

// hostUsers are the users this machine runs an image's processes as when
// its pod runs as a non-root user (the images' server users, uid 999): the
// server packages' users, by image repository.
var hostUsers = map[string]string{
	"docker.io/library/postgres": "postgres",
	"docker.io/library/mysql":    "mysql",
}

// A PodRun is how a pod's containers ran on the host.
type PodRun struct {
	// ExitCode is the last container's that ran: the first that failed,
	// or the main container's.
	ExitCode int
	// Output is each container's stdout and stderr, in order.
	Output string
}

// WaitPod waits for the first pod of Job ns/job that is running and
// returns it.
func (c *Cluster) WaitPod(t testing.TB, ns, job string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	if err := harness.Poll(t.Context(), ReadyTimeout, func(ctx context.Context) error {
		pl, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job})
		if err != nil {
			return err
		}
		for i := range pl.Items {
			if p := &pl.Items[i]; p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				pod = p
				return nil
			}
		}
		return fmt.Errorf("no running pod of Job %s/%s yet (%d pods)", ns, job, len(pl.Items))
	}); err != nil {
		t.Fatal(err)
	}
	return pod
}

// RunPod runs a pod of HostNamespace on this machine as the kubelet would,
// then ends it: Succeeded when every container exited 0, else Failed with
// the failing container's exit code. Init containers run first, then the
// single main container, each with its environment resolved from the
// apiserver (literals, Secrets, ConfigMaps, the pod's own fields) and its
// volumes as directories: a claim's is the same directory for every pod
// that mounts it, a Secret's or ConfigMap's holds their keys, an emptyDir
// is the pod's. What differs from a cluster is only where things are:
// mount paths and in-image programs (hostImages) become host paths in the
// environment and command lines, and DB_HOST and DB_PORT a loopback server
// when the address map (MapAddress) maps them.
func (c *Cluster) RunPod(t testing.TB, pod *corev1.Pod) PodRun {
	t.Helper()
	if pod.Namespace != HostNamespace {
		t.Fatalf("pod %s/%s: only pods of %s run on the host", pod.Namespace, pod.Name, HostNamespace)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("pod %s: want one container, got %d", pod.Name, len(pod.Spec.Containers))
	}
	h := c.newHostPod(t, pod)
	vols := c.podVolumes(t, pod, h)
	var run PodRun
	for _, ct := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		code, out := c.runContainer(t, pod, ct, vols, h)
		run.ExitCode = code
		run.Output += "--- " + ct.Name + " (exit " + fmt.Sprint(code) + "):\n" + out
		if code != 0 {
			break
		}
	}
	t.Logf("pod %s/%s on the host:\n%s", pod.Namespace, pod.Name, run.Output)
	c.endPod(t, pod, run.ExitCode)
	return run
}

// A hostPod is where a pod runs on the host: as whom, and the directory
// its volumes and HOME are made in.
type hostPod struct {
	cred *syscall.Credential // nil: as the tester
	dir  string
}

// newHostPod is pod's user and directory, removed when the test ends
// unless it failed or DBPLANE_E2E_KEEP is set.
func (c *Cluster) newHostPod(t testing.TB, pod *corev1.Pod) hostPod {
	t.Helper()
	var h hostPod
	if sc := pod.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser != 0 {
		repo, _, _ := strings.Cut(pod.Spec.Containers[0].Image, ":")
		name, ok := hostUsers[repo]
		if !ok {
			t.Fatalf("pod %s runs as uid %d of image %s: no user of this machine stands for it", pod.Name, *sc.RunAsUser, repo)
		}
		cred, err := servers.ServiceUser(name)
		if err != nil {
			t.Fatal(err)
		}
		h.cred = cred
	}
	d, err := os.MkdirTemp("", "dbplane-pod-")
	if err != nil {
		t.Fatal(err)
	}
	h.dir = d
	t.Cleanup(func() {
		if !t.Failed() && !harness.Keep() {
			_ = os.RemoveAll(d)
		}
	})
	if err := servers.ChownAll(d, h.cred); err != nil {
		t.Fatal(err)
	}
	return h
}

// mkdir makes a directory of the pod's, owned by its user.
func (h hostPod) mkdir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(h.dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.ChownAll(d, h.cred); err != nil {
		t.Fatal(err)
	}
	return d
}

// podVolumes makes a directory for each of pod's volumes and returns them
// by volume name.
func (c *Cluster) podVolumes(t testing.TB, pod *corev1.Pod, h hostPod) map[string]string {
	t.Helper()
	ctx := t.Context()
	dirs := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			d := c.ClaimDir(t, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
			// fsGroup: the pod's user may write it.
			if err := servers.ChownAll(d, h.cred); err != nil {
				t.Fatal(err)
			}
			dirs[v.Name] = d
		case v.EmptyDir != nil:
			dirs[v.Name] = h.mkdir(t)
		case v.Secret != nil:
			s, err := c.Kube.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: volume %s: %v", pod.Name, v.Name, err)
			}
			dirs[v.Name] = writeKeys(t, h, s.Data, v.Secret.Items)
		case v.ConfigMap != nil:
			cm, err := c.Kube.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: volume %s: %v", pod.Name, v.Name, err)
			}
			data := map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			dirs[v.Name] = writeKeys(t, h, data, v.ConfigMap.Items)
		default:
			t.Fatalf("pod %s: volume %s is of a kind RunPod cannot make", pod.Name, v.Name)
		}
	}
	return dirs
}

// ClaimDir is the directory standing for claim ns/name: the same for
// every pod that mounts it, for as long as the cluster runs. Pods' users
// reach it through the cluster's directory, which they may traverse.
func (c *Cluster) ClaimDir(t testing.TB, ns, name string) string {
	t.Helper()
	d := filepath.Join(c.Dir, "claims", ns, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{c.Dir, filepath.Join(c.Dir, "claims"), filepath.Dir(d)} {
		if err := os.Chmod(p, 0o711); err != nil { //nolint:gosec // Traversal only: the files in it are the tester's, 0600.
			t.Fatal(err)
		}
	}
	return d
}

// writeKeys writes data's keys (items' only, at their paths, when set) as
// files of a new directory of the pod's.
func writeKeys(t testing.TB, h hostPod, data map[string][]byte, items []corev1.KeyToPath) string {
	t.Helper()
	d := h.mkdir(t)
	paths := map[string]string{}
	for k := range data {
		paths[k] = k
	}
	if len(items) > 0 {
		paths = map[string]string{}
		for _, it := range items {
			if _, ok := data[it.Key]; !ok {
				t.Fatalf("volume item %s: no such key", it.Key)
			}
			paths[it.Key] = it.Path
		}
	}
	for k, p := range paths {
		if err := os.WriteFile(filepath.Join(d, p), data[k], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := servers.ChownAll(d, h.cred); err != nil {
		t.Fatal(err)
	}
	return d
}

// runContainer runs one container of pod on the host and returns its exit
// code and output.
func (c *Cluster) runContainer(t testing.TB, pod *corev1.Pod, ct corev1.Container, vols map[string]string, h hostPod) (int, string) {
	t.Helper()
	paths := map[string]string{}
	for _, m := range ct.VolumeMounts {
		d, ok := vols[m.Name]
		if !ok {
			t.Fatalf("pod %s: container %s mounts unknown volume %s", pod.Name, ct.Name, m.Name)
		}
		paths[m.MountPath] = d
	}
	if img, ok := hostImages[ct.Image]; ok {
		for in, prog := range img.paths {
			p, err := exec.LookPath(prog)
			if err != nil {
				t.Fatalf("image %s: %v", ct.Image, err)
			}
			// Debian's build says v1.60.1-DEV.
			out, err := exec.CommandContext(t.Context(), p, "version").Output() //nolint:gosec // The host's copy of the image's program.
			if v := firstLine(out); err != nil || (v != img.version && !strings.HasPrefix(v, img.version+"-")) {
				t.Fatalf("image %s: the host's %s is not %s: %q (%v)", ct.Image, p, img.version, v, err)
			}
			paths[in] = p
		}
	}
	local := func(s string) string {
		// Longest first, so /a/b is not taken for /a.
		for _, from := range slices.SortedFunc(maps.Keys(paths), func(a, b string) int { return cmp.Compare(len(b), len(a)) }) {
			s = strings.ReplaceAll(s, from, paths[from])
		}
		return s
	}
	env := c.containerEnv(t, pod, ct)
	for k, v := range env {
		env[k] = local(v)
	}
	c.mapHost(t, env)

	args := append(slices.Clone(ct.Command), ct.Args...)
	for i := range args {
		args[i] = local(args[i])
	}
	ctx, cancel := context.WithTimeout(t.Context(), podTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) //nolint:gosec // The composed command.
	// The images' PATH: this machine's, with the server binaries (verify's
	// scratch servers); HOME keeps the tester's files out.
	cmd.Env = []string{"PATH=" + servers.PostgresBin() + ":" + os.Getenv("PATH") + ":/usr/sbin", "HOME=" + h.mkdir(t)}
	if h.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: h.cred}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode(), out.String()
	default:
		t.Fatalf("pod %s: container %s did not run: %v\n%s", pod.Name, ct.Name, err, out.String())
		return 0, ""
	}
}

// containerEnv is ct's environment as the kubelet would set it.
func (c *Cluster) containerEnv(t testing.TB, pod *corev1.Pod, ct corev1.Container) map[string]string {
	t.Helper()
	ctx := t.Context()
	env := map[string]string{}
	for _, e := range ct.Env {
		switch f := e.ValueFrom; {
		case f == nil:
			env[e.Name] = e.Value
		case f.SecretKeyRef != nil:
			s, err := c.Kube.CoreV1().Secrets(pod.Namespace).Get(ctx, f.SecretKeyRef.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: variable %s: %v", pod.Name, e.Name, err)
			}
			v, ok := s.Data[f.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("pod %s: variable %s: Secret %s has no key %s", pod.Name, e.Name, s.Name, f.SecretKeyRef.Key)
			}
			env[e.Name] = string(v)
		case f.ConfigMapKeyRef != nil:
			cm, err := c.Kube.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, f.ConfigMapKeyRef.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: variable %s: %v", pod.Name, e.Name, err)
			}
			env[e.Name] = cm.Data[f.ConfigMapKeyRef.Key]
		case f.FieldRef != nil:
			v, ok := map[string]string{"metadata.name": pod.Name, "metadata.namespace": pod.Namespace}[f.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("pod %s: variable %s: field %s", pod.Name, e.Name, f.FieldRef.FieldPath)
			}
			env[e.Name] = v
		default:
			t.Fatalf("pod %s: variable %s has a source RunPod cannot resolve", pod.Name, e.Name)
		}
	}
	return env
}

// mapHost points DB_HOST and DB_PORT at the loopback server the address
// map maps them to, if any.
func (c *Cluster) mapHost(t testing.TB, env map[string]string) {
	t.Helper()
	h, p := env["DB_HOST"], env["DB_PORT"]
	if h == "" || p == "" {
		return
	}
	c.mapMu.Lock()
	b, err := os.ReadFile(c.addressMap)
	c.mapMu.Unlock()
	if err != nil {
		t.Fatalf("cannot read the address map: %v", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	to, ok := m[net.JoinHostPort(h, p)]
	if !ok {
		t.Fatalf("the address map maps no server to DB_HOST:DB_PORT %s:%s", h, p)
	}
	if env["DB_HOST"], env["DB_PORT"], err = net.SplitHostPort(to); err != nil {
		t.Fatal(err)
	}
}

// endPod ends a running pod as the kubelet reports a finished one: its
// containers terminated with code, its phase Succeeded or Failed.
func (c *Cluster) endPod(t testing.TB, pod *corev1.Pod, code int) {
	t.Helper()
	now := metav1.Now()
	p, err := c.Kube.CoreV1().Pods(pod.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodSucceeded
	reason := "Completed"
	if code != 0 {
		p.Status.Phase, reason = corev1.PodFailed, "Error"
	}
	p.Status.ContainerStatuses = nil
	for _, ct := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: int32(code), Reason: reason, StartedAt: now, FinishedAt: now, //nolint:gosec // An exit code.
			}},
		})
	}
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].LastTransitionTime = now
		}
	}
	if _, err := c.Kube.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("cannot end pod %s: %v", pod.Name, err)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
