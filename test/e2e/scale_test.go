//go:build e2e

package e2e

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/cluster"
)

// scaleTimeout bounds one size of BenchmarkScale: past it the run fails
// rather than hangs. The target (300 Ready within 120 s) is reported, not
// enforced: a benchmark measures.
const scaleTimeout = 15 * time.Minute

// BenchmarkScale applies N Databases at once (N = 10, 100, 300, or the
// sizes in DBPLANE_E2E_SCALE) to the shared control plane and reports:
//
//   - sts-p50-s, sts-p99-s: from a Database's create returning to its
//     StatefulSet's ADDED watch event;
//   - ready-p50-s, ready-p99-s: from create to the Database's Ready=True;
//   - lag-p50-s, lag-p99-s: from every replica of a StatefulSet ready to its
//     Database's Ready=True: what Crossplane and the function add;
//   - all-ready-s: from the first create to the last Database Ready;
//   - fn-cpu-s, xp-cpu-s: CPU seconds the function and Crossplane core used
//     during the run; fn-rss-MB, xp-rss-MB: their peak resident set so far
//     (VmHWM: the process's high-water mark since it started);
//   - all-cpu-s: CPU seconds of every process of the control plane and of
//     this one (the informers above and the volume binder).
//
// It logs where the time went: claims from created to Bound, pods from
// created to scheduled and to Ready, each process's CPU seconds and the
// apiserver's most frequent requests.
//
// It fails if the function logged an error-level line during the run.
// Databases are a mix: PostgreSQL and MySQL; development, staging and
// production (2 replicas); every one with backups. Each size runs in its own
// namespace, deleted with everything in it (untimed) before the next size.
// A single Database goes first, on its own (cold/N=1).
//
//	make bench-e2e
func BenchmarkScale(b *testing.B) {
	sizes := []int{10, 100, 300}
	if s := os.Getenv("DBPLANE_E2E_SCALE"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("DBPLANE_E2E_SCALE=%q: want sizes such as 10,100,300", s)
			}
			sizes = append(sizes, n)
		}
	}
	runs := 0 // Each run gets a namespace of its own.
	run := func(name string, n int) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				runs++
				scaleOnce(b, n, fmt.Sprintf("scale-%d-%d", n, runs))
			}
		})
	}
	// One Database on the fresh control plane first: it pays what only the
	// first Database of a cluster pays (the apiserver building the
	// Database CRD's handler and validators, Crossplane starting its watches
	// of the composed kinds), reported on its own so it does not land in a
	// size's percentiles.
	run("cold/N=1", 1)
	for _, n := range sizes {
		run(fmt.Sprintf("N=%d", n), n)
	}
}

// scaleSpec is the i-th Database's spec of a scale run.
func scaleSpec(i int) map[string]any {
	envs := []string{"development", "staging", "production"}
	env := envs[i%3]
	replicas := int64(1)
	if env == "production" {
		replicas = 2
	}
	spec := map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    replicas,
		"environment": env,
		"storage":     map[string]any{"size": "1Gi"},
		"backup":      map[string]any{"enabled": true},
	}
	if i%2 == 1 {
		spec["type"], spec["version"] = "mysql", "8.4"
	}
	return spec
}

// scaleOnce runs one size: apply n Databases concurrently in namespace ns,
// watch their StatefulSets and readiness, and report.
func scaleOnce(b *testing.B, n int, ns string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	defer cancel()

	// A client of its own that does not throttle: creates "at once".
	cfg := *env.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	kube := kubernetes.NewForConfigOrDie(&cfg)
	dyn := dynamic.NewForConfigOrDie(&cfg)

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !kerrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	defer deleteScaleNamespace(b, dyn, kube, ns)

	var (
		mu      sync.Mutex
		applied = map[string]time.Time{}
		stsAt   = map[string]time.Time{}
		stsUpAt = map[string]time.Time{} // every replica ready
		readyAt = map[string]time.Time{}
		// Where the infrastructure's time goes: a claim from seen to
		// Bound, a pod from seen to scheduled and to Ready.
		claimAt, boundAt            = map[string]time.Time{}, map[string]time.Time{}
		podAt, scheduledAt, podUpAt = map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	)
	// Informers, not bare watches: they list again and rewatch when the
	// apiserver ends a watch, which it does under load.
	kinf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	dinf := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
	allReady := make(chan struct{})
	sts := func(obj any) {
		s, ok := obj.(*appsv1.StatefulSet)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		firstSeen(stsAt, s.Name)
		if s.Spec.Replicas != nil && s.Status.ReadyReplicas == *s.Spec.Replicas {
			firstSeen(stsUpAt, s.Name)
		}
	}
	claim := func(obj any) {
		c, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		firstSeen(claimAt, c.Name)
		if c.Status.Phase == corev1.ClaimBound {
			firstSeen(boundAt, c.Name)
		}
	}
	pod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		firstSeen(podAt, p.Name)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type { //nolint:exhaustive // Only these two.
			case corev1.PodScheduled:
				firstSeen(scheduledAt, p.Name)
			case corev1.PodReady:
				firstSeen(podUpAt, p.Name)
			}
		}
	}
	ready := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		if s, _, _ := cluster.Condition(u, "Ready"); s != "True" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if firstSeen(readyAt, u.GetName()) && len(readyAt) == n {
			close(allReady)
		}
	}
	for inf, fn := range map[cache.SharedIndexInformer]func(any){
		kinf.Apps().V1().StatefulSets().Informer():           sts,
		kinf.Core().V1().PersistentVolumeClaims().Informer(): claim,
		kinf.Core().V1().Pods().Informer():                   pod,
		dinf.ForResource(cluster.GVRDatabase).Informer():     ready,
	} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    fn,
			UpdateFunc: func(_, obj any) { fn(obj) },
		}); err != nil {
			b.Fatal(err)
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	kinf.Start(stop)
	dinf.Start(stop)
	kinf.WaitForCacheSync(stop)
	dinf.WaitForCacheSync(stop)

	cpu0 := usages(b)
	req0 := apiserverRequests(b)
	fnLog0 := logSize(env.Function().Log)

	// Apply: n creates from 32 workers, each time taken when the create
	// returned (the object exists).
	t0 := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("db-%03d", i)
				d := cluster.NewDatabase(ns, name, scaleSpec(i))
				if _, err := dyn.Resource(cluster.GVRDatabase).Namespace(ns).Create(ctx, d.Unstructured, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("cannot create Database %s: %w", name, err)
					continue
				}
				mu.Lock()
				applied[name] = time.Now()
				mu.Unlock()
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	applyDone := time.Since(t0)

	select {
	case <-allReady:
	case <-ctx.Done():
		listed := 0
		if l, err := dyn.Resource(cluster.GVRDatabase).Namespace(ns).List(context.Background(), metav1.ListOptions{}); err == nil {
			for i := range l.Items {
				if s, _, _ := cluster.Condition(&l.Items[i], "Ready"); s == "True" {
					listed++
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("after %s the informer saw %d of %d Databases Ready (a list says %d), and %d StatefulSets created",
			time.Since(t0).Round(time.Second), len(readyAt), n, listed, len(stsAt))
	}
	all := time.Since(t0)
	cpu1 := usages(b)
	req1 := apiserverRequests(b)
	fn0, fn1 := cpu0["function"], cpu1["function"]
	xp0, xp1 := cpu0["crossplane"], cpu1["crossplane"]

	mu.Lock()
	var toSts, toReady, lag []time.Duration
	for name, at := range applied {
		if s, ok := stsAt[name]; ok {
			toSts = append(toSts, max(s.Sub(at), 0))
		}
		toReady = append(toReady, readyAt[name].Sub(at))
		if up, ok := stsUpAt[name]; ok {
			lag = append(lag, max(readyAt[name].Sub(up), 0))
		}
	}
	toBound := sinceEach(claimAt, boundAt)
	toScheduled := sinceEach(podAt, scheduledAt)
	toPodReady := sinceEach(scheduledAt, podUpAt)
	mu.Unlock()
	if len(toSts) != n {
		b.Errorf("saw %d StatefulSets created for %d Databases", len(toSts), n)
	}

	b.ReportMetric(percentile(toSts, 50).Seconds(), "sts-p50-s")
	b.ReportMetric(percentile(toSts, 99).Seconds(), "sts-p99-s")
	b.ReportMetric(percentile(toReady, 50).Seconds(), "ready-p50-s")
	b.ReportMetric(percentile(toReady, 99).Seconds(), "ready-p99-s")
	b.ReportMetric(percentile(lag, 50).Seconds(), "lag-p50-s")
	b.ReportMetric(percentile(lag, 99).Seconds(), "lag-p99-s")
	b.ReportMetric(all.Seconds(), "all-ready-s")
	b.ReportMetric(fn1.cpu-fn0.cpu, "fn-cpu-s")
	b.ReportMetric(xp1.cpu-xp0.cpu, "xp-cpu-s")
	b.ReportMetric(fn1.peakMB, "fn-rss-MB")
	b.ReportMetric(xp1.peakMB, "xp-rss-MB")
	b.ReportMetric(0, "ns/op") // One run of a fixed size: the metrics above are the result.
	b.Logf("N=%d: %d creates in %s; apply->StatefulSet p50 %s p99 %s; apply->Ready p50 %s p99 %s; "+
		"StatefulSet ready->Database Ready p50 %s p99 %s; all Ready after %s; "+
		"function %.1f CPU s, peak RSS %.0f MB; Crossplane %.1f CPU s, peak RSS %.0f MB",
		n, n, applyDone.Round(time.Millisecond), percentile(toSts, 50).Round(time.Millisecond), percentile(toSts, 99).Round(time.Millisecond),
		percentile(toReady, 50).Round(time.Millisecond), percentile(toReady, 99).Round(time.Millisecond),
		percentile(lag, 50).Round(time.Millisecond), percentile(lag, 99).Round(time.Millisecond), all.Round(time.Millisecond),
		fn1.cpu-fn0.cpu, fn1.peakMB, xp1.cpu-xp0.cpu, xp1.peakMB)
	b.Logf("N=%d infrastructure: %d claims, seen->Bound p50 %s p99 %s; %d pods, seen->scheduled p50 %s p99 %s, scheduled->Ready p50 %s p99 %s",
		n, len(toBound), percentile(toBound, 50).Round(time.Millisecond), percentile(toBound, 99).Round(time.Millisecond),
		len(toScheduled), percentile(toScheduled, 50).Round(time.Millisecond), percentile(toScheduled, 99).Round(time.Millisecond),
		percentile(toPodReady, 50).Round(time.Millisecond), percentile(toPodReady, 99).Round(time.Millisecond))
	var total float64
	var each []string
	names := []string{}
	for _, p := range env.Processes() {
		names = append(names, p.Name)
	}
	for _, name := range append(names, harnessProcess) {
		d := cpu1[name].cpu - cpu0[name].cpu
		total += d
		each = append(each, fmt.Sprintf("%s %.1f", name, d))
	}
	b.ReportMetric(total, "all-cpu-s")
	b.Logf("N=%d CPU seconds during the run: %s; all %.1f over %s (%.2f cores busy)",
		n, strings.Join(each, ", "), total, all.Round(time.Second), total/all.Seconds())

	b.Logf("N=%d apiserver requests during the run, most frequent first: %s", n, topRequests(req0, req1, 8))
	if lines := errorLines(b, env.Function().Log, fnLog0); len(lines) > 0 {
		b.Errorf("the function logged %d error-level lines during the run, first: %s", len(lines), lines[0])
	}
}

// firstSeen records now as when name was first seen in m, and reports
// whether this was the first time.
func firstSeen(m map[string]time.Time, name string) bool {
	if _, ok := m[name]; ok {
		return false
	}
	m[name] = time.Now()
	return true
}

// sinceEach is, for every name in to, how long after from it came.
func sinceEach(from, to map[string]time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(to))
	for name, t := range to {
		if f, ok := from[name]; ok {
			out = append(out, max(t.Sub(f), 0))
		}
	}
	return out
}

// apiserverRequests is how many requests the apiserver has served so far,
// by verb and resource (apiserver_request_total of its /metrics).
func apiserverRequests(b *testing.B) map[string]float64 {
	b.Helper()
	body, err := env.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		m := requestTotal.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range requestLabel.FindAllStringSubmatch(m[1], -1) {
			labels[kv[1]] = kv[2]
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			b.Fatalf("cannot parse apiserver metric %q", l)
		}
		key := labels["verb"] + " " + labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			key += "/" + sub
		}
		out[key] += v
	}
	return out
}

var (
	requestTotal = regexp.MustCompile(`^apiserver_request_total\{(.*)\} (\S+)$`)
	requestLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// topRequests formats the k most frequent requests between two counts.
func topRequests(before, after map[string]float64, k int) string {
	type req struct {
		name string
		n    float64
	}
	var all []req
	total := 0.0
	for name, n := range after {
		if d := n - before[name]; d > 0 {
			all = append(all, req{name, d})
			total += d
		}
	}
	slices.SortFunc(all, func(a, b req) int { return cmp.Compare(b.n, a.n) })
	var parts []string
	for _, r := range all[:min(k, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %.0f", r.name, r.n))
	}
	return fmt.Sprintf("%s; %.0f in all", strings.Join(parts, ", "), total)
}

// usages is every running component's usage, by name.
func usages(b *testing.B) map[string]procUsage {
	b.Helper()
	out := map[string]procUsage{}
	for _, p := range env.Processes() {
		if err := p.Alive(); err != nil {
			b.Fatal(err)
		}
		out[p.Name] = usage(b, p.PID())
	}
	// This process: the benchmark's informers and the volume binder.
	out[harnessProcess] = usage(b, os.Getpid())
	return out
}

// harnessProcess names this process, the test binary, among the usages.
const harnessProcess = "harness (test process)"

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

// procUsage is a process's CPU seconds so far and peak resident set.
type procUsage struct {
	cpu    float64
	peakMB float64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// usage reads process pid's CPU time (user + system) and VmHWM from /proc.
func usage(b *testing.B, pid int) procUsage {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("cannot parse /proc/%d/stat: %q", pid, stat)
	}
	u := procUsage{cpu: (utime + stime) / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("cannot parse VmHWM of pid %d: %q", pid, l)
			}
			u.peakMB = kb / 1024
		}
	}
	return u
}

// logSize is the size of a log file, where a run's lines start.
func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// errorLevel matches an error-level line of function-sdk-go's zap logger,
// in its console (--debug) and JSON encodings.
var errorLevel = regexp.MustCompile(`\tERROR\t|"level":"error"`)

// errorLines returns the error-level lines the log got after offset.
func errorLines(b *testing.B, path string, offset int64) []string {
	b.Helper()
	f, err := os.Open(path) //nolint:gosec // The harness's own log.
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close() //nolint:errcheck // Read only.
	if _, err := f.Seek(offset, 0); err != nil {
		b.Fatal(err)
	}
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if errorLevel.MatchString(s.Text()) {
			out = append(out, s.Text())
		}
	}
	return out
}

// deleteScaleNamespace deletes a scale run's Databases and namespace and
// waits until both are gone.
func deleteScaleNamespace(b *testing.B, dyn dynamic.Interface, kube kubernetes.Interface, ns string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	defer cancel()
	if err := dyn.Resource(cluster.GVRDatabase).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		b.Errorf("cannot delete the Databases of %s: %v", ns, err)
		return
	}
	if err := harness.Poll(ctx, scaleTimeout, func(ctx context.Context) error {
		l, err := dyn.Resource(cluster.GVRDatabase).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d Databases left", len(l.Items))
		}
		return nil
	}); err != nil {
		b.Errorf("Databases of %s not deleted: %v", ns, err)
	}
	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		b.Errorf("cannot delete namespace %s: %v", ns, err)
		return
	}
	// Until the namespace is gone: pods, claims and volumes deleted, so
	// the next run starts on a quiet control plane.
	if err := harness.Poll(ctx, scaleTimeout, func(ctx context.Context) error {
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		switch {
		case kerrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("namespace %s still terminating", ns)
	}); err != nil {
		b.Errorf("namespace %s not deleted: %v", ns, err)
	}
}
