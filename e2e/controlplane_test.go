//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// controlPlane is etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
// 127.0.0.1, with one fake node that kwok keeps Ready and whose pods kwok marks Running and
// Ready. Every process dies with the test binary (Pdeathsig), pass, fail or timeout.
type controlPlane struct {
	dir        string
	Kubeconfig string
	procs      []*exec.Cmd
}

// binaries the control plane runs; set from the environment by run.sh (each built from the Go
// module proxy at a pinned version).
type binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kwok, KwokStages string
}

func binariesFromEnv() (binaries, error) {
	b := binaries{
		Etcd: os.Getenv("E2E_ETCD"), APIServer: os.Getenv("E2E_KUBE_APISERVER"),
		ControllerManager: os.Getenv("E2E_KUBE_CONTROLLER_MANAGER"), Scheduler: os.Getenv("E2E_KUBE_SCHEDULER"),
		Kwok: os.Getenv("E2E_KWOK"), KwokStages: os.Getenv("E2E_KWOK_STAGES"),
	}
	for name, v := range map[string]string{"E2E_ETCD": b.Etcd, "E2E_KUBE_APISERVER": b.APIServer,
		"E2E_KUBE_CONTROLLER_MANAGER": b.ControllerManager, "E2E_KUBE_SCHEDULER": b.Scheduler,
		"E2E_KWOK": b.Kwok, "E2E_KWOK_STAGES": b.KwokStages} {
		if v == "" {
			return b, fmt.Errorf("%s is not set: run the real-engine tier with `make e2e` (e2e/run.sh builds the tools)", name)
		}
	}
	return b, nil
}

// startTestCluster starts a control plane for one test, within timeout: it stops when the test
// ends, and its logs are printed if the test failed. It returns the test's context and work
// directory, the control plane and a view of its API.
func startTestCluster(t *testing.T, timeout time.Duration) (context.Context, string, *controlPlane, *clusterView) {
	t.Helper()
	bin, err := binariesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	work := t.TempDir()
	cp, err := startControlPlane(ctx, filepath.Join(work, "cluster"), bin, t.Logf)
	if cp != nil {
		t.Cleanup(cp.Stop)
	}
	if err != nil {
		if cp != nil {
			t.Log(cp.Logs(30))
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(cp.Logs(40))
		}
	})
	cluster, err := newClusterView(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, work, cp, cluster
}

func startControlPlane(ctx context.Context, dir string, bin binaries, log func(string, ...any)) (*controlPlane, error) {
	cp := &controlPlane{dir: dir}
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort := freePort(), freePort(), freePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := cp.start("etcd", bin.Etcd, "--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return nil, err
	}
	if err := cp.start("kube-apiserver", bin.APIServer,
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert, "--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey, "--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true", "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity",
	); err != nil {
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(cp.Kubeconfig, fmt.Sprintf("https://127.0.0.1:%d", apiPort), pki); err != nil {
		return nil, err
	}
	client, err := clientFor(cp.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 2*time.Minute, "the API server to be ready", func() error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	kube := "--kubeconfig=" + cp.Kubeconfig
	if err := cp.start("kube-controller-manager", bin.ControllerManager, kube,
		"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.caCert,
		"--use-service-account-credentials=true", "--leader-elect=false", "--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", freePort()), "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-route",
	); err != nil {
		return nil, err
	}
	if err := cp.start("kube-scheduler", bin.Scheduler, kube,
		"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", freePort()),
	); err != nil {
		return nil, err
	}
	if err := cp.start("kwok", bin.Kwok, kube, "--config="+bin.KwokStages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=10.244.0.1", "--cidr=10.244.0.0/16", "--node-lease-duration-seconds=40", fmt.Sprintf("--server-address=127.0.0.1:%d", freePort()),
	); err != nil {
		return nil, err
	}
	if err := createFakeNode(ctx, client); err != nil {
		return nil, err
	}
	err = waitFor(ctx, 2*time.Minute, "the fake node to be Ready and the default ServiceAccount to exist", func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, fakeNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !nodeReady(n) {
			return fmt.Errorf("node %s is not Ready", fakeNodeName)
		}
		_, err = client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	log("control plane up on %s (etcd %s)", fmt.Sprintf("127.0.0.1:%d", apiPort), etcdURL)
	return cp, err
}

// start runs a control-plane process with its output in <dir>/<name>.log.
func (cp *controlPlane) start(name, bin string, args ...string) error {
	logFile, err := os.Create(filepath.Join(cp.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Killed with the test binary, whatever ends it; in its own process group for Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	cp.procs = append(cp.procs, cmd)
	return nil
}

// Stop ends every process, the last started first.
func (cp *controlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// Logs returns the tail of each process's log, for a failure message.
func (cp *controlPlane) Logs(lines int) string {
	var b strings.Builder
	for _, p := range cp.procs {
		name := filepath.Base(p.Path)
		data, _ := os.ReadFile(filepath.Join(cp.dir, name+".log"))
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "---- %s (last %d lines)\n%s\n", name, len(all), strings.Join(all, "\n"))
	}
	return b.String()
}

const fakeNodeName = "kwok-node-0"

// createFakeNode registers the node kwok manages, with room for every pod the stack runs: cpu,
// memory, pods and ephemeral-storage (pods that request storage stay Pending without it).
func createFakeNode(ctx context.Context, client kubernetes.Interface) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fakeNodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{"kubernetes.io/hostname": fakeNodeName, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": "zone-a", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	return err
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return kubernetes.NewForConfig(cfg)
}

// waitFor polls check until it returns nil or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %w", timeout, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pkiFiles are the control plane's certificates: one CA signs the API server's serving
// certificate and the admin's client certificate (group system:masters).
type pkiFiles struct {
	caCert, serverCert, serverKey, adminCert, adminKey, saKey, saPub string
}

func writePKI(dir string) (pkiFiles, error) {
	f := pkiFiles{
		caCert: filepath.Join(dir, "ca.crt"), serverCert: filepath.Join(dir, "apiserver.crt"), serverKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := writePEM(f.caCert, "CERTIFICATE", caDER); err != nil {
		return f, err
	}
	issue := func(serial int64, tmpl *x509.Certificate, certPath, keyPath string) error {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyPath, "EC PRIVATE KEY", keyDER)
	}
	if err := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}, f.serverCert, f.serverKey); err != nil {
		return f, err
	}
	if err := issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "e2e-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, f.adminCert, f.adminKey); err != nil {
		return f, err
	}
	saKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err := writePEM(f.saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return f, err
	}
	return f, writePEM(f.saPub, "PUBLIC KEY", pub)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func writeKubeconfig(path, server string, pki pkiFiles) error {
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: admin
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, server, pki.caCert, pki.adminCert, pki.adminKey)
	return os.WriteFile(path, []byte(kubeconfig), 0o600)
}
