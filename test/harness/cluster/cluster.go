//go:build e2e

package cluster

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
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dbplane/dbplane/test/harness"
)

// Timeouts of the start-up steps. Generous: on 2 busy cores the apiserver
// alone takes a few seconds.
const (
	componentTimeout = 90 * time.Second
	setupTimeout     = 2 * time.Minute
)

// The fake node kwok manages, and the storage classes whose claims the
// volumeBinder provisions and binds: the default one and the class the
// production examples ask for.
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

// Options configure Start.
type Options struct {
	// Root is the repository's root directory: where the function is built
	// from, and the package, examples and tool wrappers are read from.
	Root string
	// AuditLog, when set, is the file the apiserver writes its audit log
	// to: every request's metadata, once completed.
	AuditLog string
	// FromRegistry installs dbplane as platform teams do: a loopback
	// registry, then the README's install steps (make xpkg, crossplane xpkg
	// push of the three packages, crossplane xpkg install configuration),
	// with the harness as the External package runtime that runs the
	// function and provider as local processes. Without it the harness
	// installs the pieces by hand, with the Compositions the e2e suites use.
	FromRegistry bool
	// Crossplane1 runs Crossplane 1.20's core (test/tools/crossplane-core-v1)
	// instead of v2.4.2, with its own CRDs, and installs only what 1.x can
	// read: the claims package's legacy XRD and Composition (1.x knows no
	// v2 XRD, so no Database), and the function package with the
	// crossplane.version constraint a 1.20 user's package would need.
	Crossplane1 bool
	// Record, when set, is given how long each start-up step took, as
	// "start-up: <step>", and each binary's build, as "binary: <name>".
	Record func(name string, d time.Duration)
}

// A Cluster is a real control plane on 127.0.0.1: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, kwok faking one node with its
// pods and volumes, Crossplane core and its RBAC manager running as their
// ServiceAccounts, dbplane's function as a local process Crossplane calls
// over mTLS, and dbplane's SQL provider as a local process running as its
// ServiceAccount.
type Cluster struct {
	// Root is the repository's root directory.
	Root string
	// Dir holds everything the cluster writes; its logs are in Dir/logs.
	Dir string
	// Kubeconfig is the admin's kubeconfig (system:masters).
	Kubeconfig string
	// Config is the admin's client configuration, for clients of other
	// rates than Kube's and Dynamic's.
	Config *rest.Config
	// Kube is a client as the admin.
	Kube kubernetes.Interface
	// Dynamic is a dynamic client as the admin.
	Dynamic dynamic.Interface
	// Mapper maps kinds to resources, from the apiserver's discovery.
	Mapper meta.RESTMapper

	opts  Options
	logs  string
	pki   *pki
	bins  map[string]string
	ports map[string]int
	procs []*harness.Process // in start order; stopped in reverse

	crossplane string // kubeconfig: crossplane-system/crossplane's token
	rbac       string // kubeconfig: crossplane-system/rbac-manager's token

	function *harness.Process // the composition function, restartable by tests

	claims    sync.Once // installs the claims package, for the first test that needs it
	claimsErr error

	providerKubeconfig string     // kubeconfig: crossplane-system/provider-sql's token
	addressMap         string     // the provider's --address-map file
	mapMu              sync.Mutex // serialises MapAddress

	stopBinder context.CancelFunc // the volume binder's, in this process
}

// Start starts every component in order and waits for each to be ready. On
// error the returned Cluster is still non-nil when anything was started:
// stop it.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Record == nil {
		o.Record = func(string, time.Duration) {}
	}
	dir, err := os.MkdirTemp("", "dbplane-e2e-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the cluster's directory: %w", err)
	}
	c := &Cluster{Root: o.Root, Dir: dir, opts: o, logs: filepath.Join(dir, "logs"), bins: map[string]string{}, ports: map[string]int{}}
	if err := os.MkdirAll(c.logs, 0o700); err != nil {
		return c, fmt.Errorf("cannot create the log directory: %w", err)
	}
	type step struct {
		name string
		fn   func(context.Context) error
	}
	steps := []step{
		{"binaries", c.buildBinaries},
		{"certificates", c.writeCertificates},
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"kube-controller-manager and kube-scheduler", c.startControllers},
		{"kwok", c.startKwok},
		{"volume binder", c.startVolumeBinder},
		{"crossplane install", c.installCrossplane},
	}
	if o.FromRegistry {
		// The packages bring the provider's CRDs, so the provider starts
		// after them. Crossplane before the function, as below.
		steps = append(steps,
			step{"crossplane", c.startCrossplane},
			step{"function", c.StartFunction},
			step{"registry", c.startRegistry},
			step{"packages (README install steps)", c.installPackages},
			step{"packages (External runtime)", c.runPackages},
			step{"provider install", c.installProviderIdentity},
			step{"provider", c.startProvider},
			step{"configuration", c.waitDatabasesServed},
			step{"claims configuration", c.waitClaimsServed},
		)
	} else {
		steps = append(steps,
			step{"provider install", c.installProvider},
			// Crossplane before the function: the function's metrics server
			// binds :8080 (function-sdk-go's default; cmd/function has no flag
			// for it) and ignores failing to, while the RBAC manager's binds
			// :8080 too and exits when it cannot.
			step{"crossplane", c.startCrossplane},
			step{"function", c.StartFunction},
			step{"provider", c.startProvider},
			step{"function package", c.installFunction},
			step{"configuration", c.installConfiguration},
		)
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(ctx); err != nil {
			return c, fmt.Errorf("%s: %w", s.name, err)
		}
		o.Record("start-up: "+s.name, time.Since(t0))
	}
	return c, nil
}

// Stop stops every process by its PID, in reverse start order, and the
// volume binder.
func (c *Cluster) Stop() []error {
	if c.stopBinder != nil {
		c.stopBinder()
	}
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		if err := c.procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Processes are the cluster's processes, in start order.
func (c *Cluster) Processes() []*harness.Process { return c.procs }

// Function is the composition function's process.
func (c *Cluster) Function() *harness.Process { return c.function }

// PrintLogs writes where the component logs are and the end of each. A
// failed write is not reported: this is for the person reading a failed
// run, with nowhere else to go.
func (c *Cluster) PrintLogs(w io.Writer) {
	_, _ = fmt.Fprintf(w, "\ne2e: everything the control plane wrote is in %s\n", c.Dir)
	for _, p := range c.procs {
		_, _ = fmt.Fprintf(w, "\n----- %s: last lines of %s\n%s\n", p.Name, p.Log, harness.Tail(p.Log, 3000))
	}
	_, _ = fmt.Fprintf(w, "\ne2e: logs in %s\n", c.logs)
}

// newProcess registers a component; it is started by the caller and
// stopped with the cluster.
func (c *Cluster) newProcess(name, bin string, ports []int, env []string, args ...string) *harness.Process {
	p := &harness.Process{
		Name:  name,
		Bin:   bin,
		Args:  args,
		Env:   append(os.Environ(), env...),
		Ports: ports,
		Log:   filepath.Join(c.logs, name+".log"),
	}
	c.procs = append(c.procs, p)
	return p
}

// port returns a free port for each component named, each picked once.
func (c *Cluster) port(ctx context.Context, names ...string) ([]int, error) {
	out := make([]int, 0, len(names))
	for _, n := range names {
		p, ok := c.ports[n]
		if !ok {
			var err error
			if p, err = harness.FreePort(ctx); err != nil {
				return nil, err
			}
			c.ports[n] = p
		}
		out = append(out, p)
	}
	return out, nil
}

// buildBinaries builds (once, cached by version) or finds every binary.
// DBPLANE_<TOOL> (for example DBPLANE_CROSSPLANE_CORE) overrides a tool's
// path.
func (c *Cluster) buildBinaries(ctx context.Context) error {
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "crossplane-core", "crossplane-cli", "registry"} {
		t0 := time.Now()
		tool := name
		if name == "crossplane-core" && c.opts.Crossplane1 {
			tool = "crossplane-core-v1"
		}
		env := "DBPLANE_" + strings.ToUpper(strings.ReplaceAll(tool, "-", "_"))
		if p := os.Getenv(env); p != "" {
			c.bins[name] = p
			continue
		}
		cmd := exec.CommandContext(ctx, filepath.Join(c.Root, "test", "tools", "build.sh"), tool) //nolint:gosec // Our own build script, with a tool name from the list above.
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("cannot build %s: %w", name, err)
		}
		c.bins[name] = strings.TrimSpace(string(out))
		c.opts.Record("binary: "+name, time.Since(t0))
	}
	// Our function and provider, in one go build: their links run in
	// parallel.
	t0 := time.Now()
	bin := filepath.Join(c.Dir, "bin")
	c.bins["function"], c.bins["provider"] = filepath.Join(bin, "function"), filepath.Join(bin, "provider")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator), "./cmd/function", "./cmd/provider") //nolint:gosec // go build of our own commands into the run's directory.
	cmd.Dir = c.Root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build the function and the provider: %w\n%s", err, out)
	}
	c.opts.Record("binary: function and provider (go build)", time.Since(t0))
	return nil
}

func (c *Cluster) writeCertificates(_ context.Context) error {
	p, err := newPKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return err
	}
	c.pki = p
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	ports, err := c.port(ctx, "etcd-client", "etcd-peer")
	if err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p := c.newProcess("etcd", c.bins["etcd"], ports, nil,
		"--name=e2e",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=e2e="+peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
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
// Database from its create to its StatefulSet. Options.AuditLog turns it on.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
`

func (c *Cluster) startAPIServer(ctx context.Context) error {
	ports, err := c.port(ctx, "kube-apiserver")
	if err != nil {
		return err
	}
	port := ports[0]
	p := c.newProcess("kube-apiserver", c.bins["kube-apiserver"], ports, nil,
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
	if path := c.opts.AuditLog; path != "" {
		policy := filepath.Join(c.Dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return fmt.Errorf("cannot write the audit policy: %w", err)
		}
		p.Args = append(p.Args, "--audit-policy-file="+policy, "--audit-log-path="+path, "--audit-log-format=json")
	}
	if err := p.Start(); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	server := "https://127.0.0.1:" + strconv.Itoa(port)
	if err := writeKubeconfig(c.Kubeconfig, server, c.pki.caCert, "e2e-admin", fmt.Sprintf(`
    client-certificate: %s
    client-key: %s`, c.pki.adminCert, c.pki.adminKey)); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("cannot read the admin's kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	c.Config = cfg
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("cannot create a client: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return fmt.Errorf("cannot create a dynamic client: %w", err)
	}
	c.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Kube.Discovery()))
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("cannot create an HTTP client: %w", err)
	}
	return p.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, hc, server+"/readyz")
		return err
	})
}

func (c *Cluster) startControllers(ctx context.Context) error {
	ports, err := c.port(ctx, "kube-controller-manager", "kube-scheduler")
	if err != nil {
		return err
	}
	kcm := c.newProcess("kube-controller-manager", c.bins["kube-controller-manager"], ports[:1], nil,
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig,
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
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[1]),
		"--leader-elect=false",
		"--kube-api-qps=5000", "--kube-api-burst=10000",
	)
	// Their serving certificates are self-signed: only their health is
	// read, never trusted.
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // Health check of a local process.
	for i, p := range []*harness.Process{kcm, sched} {
		if err := p.Start(); err != nil {
			return err
		}
		url := "https://127.0.0.1:" + strconv.Itoa(ports[i]) + "/healthz"
		if err := p.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
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
func (c *Cluster) startKwok(ctx context.Context) error {
	dir, err := moduleDir(ctx, filepath.Join(c.Root, "test", "tools", "kwok"), "sigs.k8s.io/kwok")
	if err != nil {
		return err
	}
	stages, err := kwokStages(filepath.Join(dir, "kustomize", "stage"))
	if err != nil {
		return err
	}
	config := filepath.Join(c.Dir, "kwok.yaml")
	if err := os.WriteFile(config, []byte(kwokConfig+stages), 0o600); err != nil {
		return fmt.Errorf("cannot write kwok's configuration: %w", err)
	}
	if err := c.Apply(ctx, kwokObjects); err != nil {
		return err
	}
	p := c.newProcess("kwok", c.bins["kwok"], nil, nil,
		"--kubeconfig="+c.Kubeconfig,
		"--config="+config,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.0.0.1/24",
		"--node-ip=10.0.0.1",
		"--node-port=0",
	)
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
		n, err := c.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
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
// this process; Stop stops it.
func (c *Cluster) startVolumeBinder(ctx context.Context) error {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.stopBinder = cancel
	cfg := *c.Config
	cfg.QPS, cfg.Burst = -1, 0 // No client-side limit: a volume provisioner is not what a scale run measures.
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return fmt.Errorf("cannot create the volume binder's client: %w", err)
	}
	return startVolumeBinder(bctx, kube)
}

// StartFunction starts the composition function on a port picked once, so a
// restart serves where the FunctionRevision's endpoint points.
func (c *Cluster) StartFunction(ctx context.Context) error {
	ports, err := c.port(ctx, "function")
	if err != nil {
		return err
	}
	port := ports[0]
	if c.function == nil {
		c.function = c.newProcess("function", c.bins["function"], ports, nil,
			"--debug",
			"--tls-certs-dir="+c.pki.functionTLS,
			"--address=127.0.0.1:"+strconv.Itoa(port),
			// Its metrics on a port of their own, never the default :8080.
			"--metrics-address=127.0.0.1:0",
		)
	}
	if err := c.function.Start(); err != nil {
		return err
	}
	return c.function.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// StopFunction stops the composition function; StartFunction starts it
// again.
func (c *Cluster) StopFunction() error { return c.function.Stop() }

// startCrossplane starts Crossplane core and its RBAC manager, each as its
// ServiceAccount.
func (c *Cluster) startCrossplane(ctx context.Context) error {
	ports, err := c.port(ctx, "crossplane-metrics", "crossplane-health")
	if err != nil {
		return err
	}
	xp := c.newProcess("crossplane", c.bins["crossplane-core"], ports, []string{"KUBECONFIG=" + c.crossplane},
		"core", "start", "--debug",
		"--package-runtime=External",
		"--enable-webhooks=false",
		"--tls-client-certs-dir="+c.pki.crossplaneTLS,
		"--xpkg-cache-dir="+filepath.Join(c.Dir, "xpkg-cache"),
		"--namespace="+crossplaneNamespace,
		"--metrics-port="+strconv.Itoa(ports[0]),
		"--health-probe-port="+strconv.Itoa(ports[1]),
	)
	if err := os.MkdirAll(filepath.Join(c.Dir, "xpkg-cache"), 0o700); err != nil {
		return fmt.Errorf("cannot create the package cache: %w", err)
	}
	if err := xp.Start(); err != nil {
		return err
	}
	if err := xp.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
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
	if err := rbac.Start(); err != nil {
		return err
	}
	return rbac.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, "http://127.0.0.1:8080/metrics")
		return err
	})
}

// Kubectl runs the built kubectl as the admin, with stdin if not nil. The
// error is a *KubectlError holding kubectl's stderr: the apiserver's
// message, as a user sees it.
func (c *Cluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bins["kubectl"], append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...) //nolint:gosec // Our kubectl.
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &KubectlError{Args: args, Err: err, Stderr: stderr.String()}
	}
	return stdout.String(), nil
}

// A KubectlError is a failed kubectl command and what it printed.
type KubectlError struct {
	// Args are kubectl's arguments, without the kubeconfig.
	Args []string
	// Err is why the command failed.
	Err error
	// Stderr is what kubectl printed on stderr.
	Stderr string
}

// Error says which command failed, why, and what kubectl printed.
func (e *KubectlError) Error() string {
	return fmt.Sprintf("kubectl %s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr))
}

// Unwrap returns why the command failed.
func (e *KubectlError) Unwrap() error { return e.Err }

// Apply applies YAML with kubectl.
func (c *Cluster) Apply(ctx context.Context, yaml string) error {
	_, err := c.Kubectl(ctx, strings.NewReader(yaml), "apply", "-f", "-")
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
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("cannot write kubeconfig: %w", err)
	}
	return nil
}

// moduleDir returns the directory of module mod in the module cache, as the
// wrapper module in dir requires it.
func moduleDir(ctx context.Context, dir, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", mod) //nolint:gosec // go list of a module path this package names.
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
