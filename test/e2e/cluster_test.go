//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Timeouts of the start-up steps. Generous: on 2 busy cores the apiserver
// alone takes a few seconds.
const (
	componentTimeout = 90 * time.Second
	setupTimeout     = 2 * time.Minute
)

// The fake node kwok manages, and the storage classes whose claims the
// harness's volumeBinder provisions and binds: the default one and the class
// the production examples ask for.
const (
	nodeName            = "kwok-node-0"
	defaultStorageClass = "kwok-volume"
	fastStorageClass    = "fast"
)

// What the harness installs for Crossplane.
const (
	crossplaneNamespace = "crossplane-system"
	// functionName is the Function object's name: the name the
	// Composition's functionRef uses.
	functionName = "dbplane-function-dbplane"
	// functionSource is where the function package would be pulled from.
	// Nothing is pulled: the package is a digest reference found in the
	// package cache.
	functionSource    = "xpkg.dbplane.io/dbplane/function-dbplane"
	functionTLSSecret = "dbplane-function-tls-server"
	xrdName           = "databases.database.example.com"
)

// A cluster is a real control plane on 127.0.0.1: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, kwok faking one node with its
// pods and volumes, Crossplane core and its RBAC manager running as their
// ServiceAccounts, and dbplane's function as a local process Crossplane
// calls over mTLS.
type cluster struct {
	root string // the repository
	dir  string // everything the cluster writes
	logs string
	pki  *pki

	bins  map[string]string
	ports map[string]int
	procs []*process // in start order; stopped in reverse

	admin      string // kubeconfig: system:masters, for the harness and infrastructure
	crossplane string // kubeconfig: crossplane-system/crossplane's token
	rbac       string // kubeconfig: crossplane-system/rbac-manager's token

	function *process // the composition function, restartable by tests

	stopBinder context.CancelFunc // the volume binder's, in this process

	cfg  *rest.Config // the admin's, for clients of other rates
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

// startCluster starts every component in order and waits for each to be
// ready. On error the returned cluster is still non-nil: stop it.
func startCluster(ctx context.Context) (*cluster, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dbplane-e2e-")
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root, dir: dir, logs: filepath.Join(dir, "logs"), bins: map[string]string{}, ports: map[string]int{}}
	if err := os.MkdirAll(c.logs, 0o700); err != nil {
		return c, err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"binaries", c.buildBinaries},
		{"certificates", c.writeCertificates},
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"kube-controller-manager and kube-scheduler", c.startControllers},
		{"kwok", c.startKwok},
		{"volume binder", c.startVolumeBinder},
		{"crossplane install", c.installCrossplane},
		// Crossplane before the function: the function's metrics server
		// binds :8080 (function-sdk-go's default; cmd/function has no flag
		// for it) and ignores failing to, while the RBAC manager's binds
		// :8080 too and exits when it cannot.
		{"crossplane", c.startCrossplane},
		{"function", c.startFunction},
		{"function package", c.installFunction},
		{"configuration", c.installConfiguration},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return c, fmt.Errorf("%s: %w", s.name, err)
		}
		record("start-up: "+s.name, time.Since(t0))
	}
	return c, nil
}

// stop stops every process by its PID, in reverse start order.
func (c *cluster) stop() []error {
	if c.stopBinder != nil {
		c.stopBinder()
	}
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		if err := c.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// newProcess registers a component; it is started by the caller and
// stopped with the cluster.
func (c *cluster) newProcess(name, bin string, ports []int, env []string, args ...string) *process {
	p := &process{name: name, bin: bin, args: args, env: env, ports: ports, log: logPath(c.logs, name)}
	c.procs = append(c.procs, p)
	return p
}

// port returns a free port for a component, picked once.
func (c *cluster) port(name string) (int, error) {
	if p, ok := c.ports[name]; ok {
		return p, nil
	}
	p, err := freePort()
	if err != nil {
		return 0, err
	}
	c.ports[name] = p
	return p, nil
}

func (c *cluster) ports2(names ...string) ([]int, error) {
	out := make([]int, 0, len(names))
	for _, n := range names {
		p, err := c.port(n)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// buildBinaries builds (once, cached by version) or finds every binary.
// DBPLANE_<TOOL> (for example DBPLANE_CROSSPLANE_CORE) overrides a tool's
// path.
func (c *cluster) buildBinaries(ctx context.Context) error {
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "crossplane-core"} {
		t0 := time.Now()
		env := "DBPLANE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if p := os.Getenv(env); p != "" {
			c.bins[name] = p
			continue
		}
		cmd := exec.CommandContext(ctx, filepath.Join(c.root, "test", "tools", "build.sh"), name) //nolint:gosec // Our build script and tool names.
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("cannot build %s: %w", name, err)
		}
		c.bins[name] = strings.TrimSpace(string(out))
		record("binary: "+name, time.Since(t0))
	}
	t0 := time.Now()
	c.bins["function"] = filepath.Join(c.dir, "bin", "function")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", c.bins["function"], "./cmd/function") //nolint:gosec // Into the harness's own directory.
	cmd.Dir = c.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build the function: %w\n%s", err, out)
	}
	record("binary: function (go build)", time.Since(t0))
	return nil
}

func (c *cluster) writeCertificates(_ context.Context) error {
	p, err := newPKI(filepath.Join(c.dir, "pki"))
	if err != nil {
		return err
	}
	c.pki = p
	return nil
}

func (c *cluster) startEtcd(ctx context.Context) error {
	ports, err := c.ports2("etcd-client", "etcd-peer")
	if err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p := c.newProcess("etcd", c.bins["etcd"], ports, nil,
		"--name=e2e",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=e2e="+peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err := p.start(); err != nil {
		return err
	}
	return p.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
		body, err := httpGet(ctx, http.DefaultClient, client+"/health")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `"health":"true"`) {
			return fmt.Errorf("unhealthy: %s", body)
		}
		return nil
	})
}

// auditPolicy records every request once, when it completed, with who sent
// it, its verb, object and timestamps, but no bodies: enough to follow one
// Database from its create to its StatefulSet. DBPLANE_E2E_AUDIT=FILE turns
// it on.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
`

func (c *cluster) startAPIServer(ctx context.Context) error {
	port, err := c.port("kube-apiserver")
	if err != nil {
		return err
	}
	p := c.newProcess("kube-apiserver", c.bins["kube-apiserver"], []int{port}, nil,
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(c.ports["etcd-client"]),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+c.pki.apiserverCert,
		"--tls-private-key-file="+c.pki.apiserverKey,
		"--client-ca-file="+c.pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.saPub,
		"--service-account-signing-key-file="+c.pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	)
	if path := os.Getenv("DBPLANE_E2E_AUDIT"); path != "" {
		policy := filepath.Join(c.dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return err
		}
		p.args = append(p.args, "--audit-policy-file="+policy, "--audit-log-path="+path, "--audit-log-format=json")
	}
	if err := p.start(); err != nil {
		return err
	}
	c.admin = filepath.Join(c.dir, "admin.kubeconfig")
	server := "https://127.0.0.1:" + strconv.Itoa(port)
	if err := writeKubeconfig(c.admin, server, c.pki.caCert, "e2e-admin", fmt.Sprintf(`
    client-certificate: %s
    client-key: %s`, c.pki.adminCert, c.pki.adminKey)); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.admin)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	c.cfg = cfg
	if c.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	return p.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, hc, server+"/readyz")
		return err
	})
}

func (c *cluster) startControllers(ctx context.Context) error {
	ports, err := c.ports2("kube-controller-manager", "kube-scheduler")
	if err != nil {
		return err
	}
	kcm := c.newProcess("kube-controller-manager", c.bins["kube-controller-manager"], ports[:1], nil,
		"--kubeconfig="+c.admin,
		"--authentication-kubeconfig="+c.admin,
		"--authorization-kubeconfig="+c.admin,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--leader-elect=false",
		"--service-account-private-key-file="+c.pki.saKey,
		"--root-ca-file="+c.pki.caCert,
		"--cluster-signing-cert-file="+c.pki.caCert,
		"--cluster-signing-key-file="+c.pki.caKey,
		"--use-service-account-credentials=false",
		// No client-side rate limit, as kwokctl's --disable-qps-limits: at
		// the default 50 QPS, binding claims and creating pods for a
		// few hundred fake Databases, not Crossplane or the function, set
		// the pace of a scale run.
		"--kube-api-qps=5000", "--kube-api-burst=10000",
	)
	sched := c.newProcess("kube-scheduler", c.bins["kube-scheduler"], ports[1:], nil,
		"--kubeconfig="+c.admin,
		"--authentication-kubeconfig="+c.admin,
		"--authorization-kubeconfig="+c.admin,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[1]),
		"--leader-elect=false",
		"--kube-api-qps=5000", "--kube-api-burst=10000",
	)
	// Their serving certificates are self-signed: only their health is
	// read, never trusted.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // Health check of a local process.
	for i, p := range []*process{kcm, sched} {
		if err := p.start(); err != nil {
			return err
		}
		url := "https://127.0.0.1:" + strconv.Itoa(ports[i]) + "/healthz"
		if err := p.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
			_, err := httpGet(ctx, insecure, url)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// startKwok creates the fake node and storage classes and starts kwok with
// the stages of its module's kustomize/stage: nodes become Ready and keep a
// lease, pods become Ready (Job pods complete), released volumes of the two
// storage classes are deleted.
func (c *cluster) startKwok(ctx context.Context) error {
	dir, err := moduleDir(ctx, filepath.Join(c.root, "test", "tools", "kwok"), "sigs.k8s.io/kwok")
	if err != nil {
		return err
	}
	stages, err := kwokStages(filepath.Join(dir, "kustomize", "stage"))
	if err != nil {
		return err
	}
	config := filepath.Join(c.dir, "kwok.yaml")
	if err := os.WriteFile(config, []byte(kwokConfig+stages), 0o600); err != nil {
		return err
	}
	if err := c.apply(ctx, kwokObjects); err != nil {
		return err
	}
	p := c.newProcess("kwok", c.bins["kwok"], nil, nil,
		"--kubeconfig="+c.admin,
		"--config="+config,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.0.0.1/24",
		"--node-ip=10.0.0.1",
		"--node-port=0",
	)
	if err := p.start(); err != nil {
		return err
	}
	return p.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
		n, err := c.kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("node not Ready yet")
	})
}

// startVolumeBinder starts the binder of the storage classes' claims in
// this process; stop stops it.
func (c *cluster) startVolumeBinder(ctx context.Context) error {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.stopBinder = cancel
	cfg := *c.cfg
	cfg.QPS, cfg.Burst = -1, 0 // No client-side limit: a volume provisioner is not what a scale run measures.
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	return startVolumeBinder(bctx, kube)
}

// installCrossplane does what Crossplane's Helm chart and `crossplane core
// init` would: CRDs, namespace, Lock, ServiceAccounts and RBAC. Then it
// applies our examples/install/crossplane-rbac.yaml as an operator would, and
// writes kubeconfigs holding the two ServiceAccounts' tokens.
func (c *cluster) installCrossplane(ctx context.Context) error {
	dir, err := moduleDir(ctx, filepath.Join(c.root, "test", "tools", "crossplane-core"), "github.com/crossplane/crossplane/v2")
	if err != nil {
		return err
	}
	if _, err := c.kubectl(ctx, nil, "apply", "--server-side", "-f", filepath.Join(dir, "cluster", "crds")); err != nil {
		return err
	}
	// Polled rather than `kubectl wait --all`, which fails outright on a
	// CRD too new to have any status conditions.
	gvrCRD := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if err := poll(ctx, setupTimeout, func(ctx context.Context) error {
		l, err := c.dyn.Resource(gvrCRD).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range l.Items {
			if s, _, _ := condition(&l.Items[i], "Established"); s != "True" {
				return fmt.Errorf("CRD %s not Established yet", l.Items[i].GetName())
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := c.apply(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+crossplaneNamespace+"}\n---\n"+
		"apiVersion: pkg.crossplane.io/v1beta1\nkind: Lock\nmetadata: {name: lock}\n"); err != nil {
		return err
	}
	if _, err := c.kubectl(ctx, nil, "apply", "-f", filepath.Join("testdata", "crossplane-install.yaml")); err != nil {
		return err
	}
	// Ours, as-is: what the README tells operators to apply.
	if _, err := c.kubectl(ctx, nil, "apply", "-f", filepath.Join(c.root, "examples", "install", "crossplane-rbac.yaml")); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(c.ports["kube-apiserver"])
	for sa, path := range map[string]*string{"crossplane": &c.crossplane, "rbac-manager": &c.rbac} {
		token, err := c.kubectl(ctx, nil, "create", "token", sa, "-n", crossplaneNamespace, "--duration=24h")
		if err != nil {
			return err
		}
		*path = filepath.Join(c.dir, sa+".kubeconfig")
		if err := writeKubeconfig(*path, server, c.pki.caCert, sa, "\n    token: "+strings.TrimSpace(token)); err != nil {
			return err
		}
	}
	return nil
}

// startFunction starts the composition function on a port picked once, so a
// restart serves where the FunctionRevision's endpoint points.
func (c *cluster) startFunction(ctx context.Context) error {
	port, err := c.port("function")
	if err != nil {
		return err
	}
	if c.function == nil {
		c.function = c.newProcess("function", c.bins["function"], []int{port}, nil,
			"--debug",
			"--tls-certs-dir="+c.pki.functionTLS,
			"--address=127.0.0.1:"+strconv.Itoa(port),
		)
	}
	if err := c.function.start(); err != nil {
		return err
	}
	return c.function.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// stopFunction stops the composition function; startFunction starts it
// again.
func (c *cluster) stopFunction() error { return c.function.stop() }

// startCrossplane starts Crossplane core and its RBAC manager, each as its
// ServiceAccount.
func (c *cluster) startCrossplane(ctx context.Context) error {
	ports, err := c.ports2("crossplane-metrics", "crossplane-health")
	if err != nil {
		return err
	}
	xp := c.newProcess("crossplane", c.bins["crossplane-core"], ports, []string{"KUBECONFIG=" + c.crossplane},
		"core", "start", "--debug",
		"--package-runtime=External",
		"--enable-webhooks=false",
		"--tls-client-certs-dir="+c.pki.crossplaneTLS,
		"--xpkg-cache-dir="+filepath.Join(c.dir, "xpkg-cache"),
		"--namespace="+crossplaneNamespace,
		"--metrics-port="+strconv.Itoa(ports[0]),
		"--health-probe-port="+strconv.Itoa(ports[1]),
	)
	if err := os.MkdirAll(filepath.Join(c.dir, "xpkg-cache"), 0o700); err != nil {
		return err
	}
	if err := xp.start(); err != nil {
		return err
	}
	if err := xp.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/readyz")
		return err
	}); err != nil {
		return err
	}
	// The RBAC manager grants Crossplane access to each XRD's composite
	// types. Its metrics server always binds :8080 (controller-runtime's
	// default; no flag changes it), so that port must be free.
	rbac := c.newProcess("crossplane-rbac-manager", c.bins["crossplane-core"], []int{8080}, []string{"KUBECONFIG=" + c.rbac},
		"rbac", "start", "--debug")
	if err := rbac.start(); err != nil {
		return err
	}
	return rbac.waitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, "http://127.0.0.1:8080/metrics")
		return err
	})
}

// kubectl runs the built kubectl as the admin, with stdin if not nil. The
// error holds kubectl's stderr: the apiserver's message, as a user sees it.
func (c *cluster) kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bins["kubectl"], append([]string{"--kubeconfig=" + c.admin}, args...)...) //nolint:gosec // The pinned kubectl, arguments from the tests.
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &kubectlError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

// A kubectlError is a failed kubectl command and what it printed.
type kubectlError struct {
	args   []string
	err    error
	stderr string
}

func (e *kubectlError) Error() string {
	return fmt.Sprintf("kubectl %s: %v: %s", strings.Join(e.args, " "), e.err, strings.TrimSpace(e.stderr))
}

// apply applies YAML with kubectl.
func (c *cluster) apply(ctx context.Context, yaml string) error {
	_, err := c.kubectl(ctx, strings.NewReader(yaml), "apply", "-f", "-")
	return err
}

// httpGet returns the body of a 200 response.
func httpGet(ctx context.Context, hc *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	rsp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer rsp.Body.Close() //nolint:errcheck // Only reading.
	b, _ := io.ReadAll(io.LimitReader(rsp.Body, 1<<20))
	if rsp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", url, rsp.Status, b)
	}
	return string(b), nil
}

// writeKubeconfig writes a kubeconfig for one user whose credentials are the
// given YAML lines.
func writeKubeconfig(path, server, caFile, user, credentials string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:%s
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, server, caFile, user, credentials, user)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// moduleDir returns the directory of module mod in the module cache, as the
// wrapper module in dir requires it.
func moduleDir(ctx context.Context, dir, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", mod) //nolint:gosec // Module paths from the harness.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("cannot find module %s: %w: %s", mod, err, ee.Stderr)
		}
		return "", fmt.Errorf("cannot find module %s: %w", mod, err)
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", fmt.Errorf("module %s is not downloaded", mod)
	}
	return d, nil
}
