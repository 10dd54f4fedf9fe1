package consulsync

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// pair is a self-signed certificate and its key, PEM.
func pair(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
}

// fakeConsul answers blocking queries like Consul: a query with WaitIndex equal to the current
// index waits until the index moves (or its WaitTime passes); anything else answers at once.
type fakeConsul struct {
	mu      sync.Mutex
	changed *sync.Cond
	index   uint64
	leaf    *consul.LeafCert
	roots   *consul.CARootList
	calls   []uint64 // WaitIndex of every leaf query
	service string
}

func newFakeConsul() *fakeConsul {
	f := &fakeConsul{index: 10}
	f.changed = sync.NewCond(&f.mu)
	return f
}

func (f *fakeConsul) set(leaf *consul.LeafCert, roots *consul.CARootList) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if leaf != nil {
		f.leaf = leaf
	}
	if roots != nil {
		f.roots = roots
	}
	f.index++
	f.changed.Broadcast()
}

func (f *fakeConsul) wait(q *consul.QueryOptions) uint64 {
	deadline := time.Now().Add(q.WaitTime)
	for q.WaitIndex == f.index && time.Now().Before(deadline) && q.Context().Err() == nil {
		go func() { time.Sleep(10 * time.Millisecond); f.changed.Broadcast() }()
		f.changed.Wait()
	}
	return f.index
}

func (f *fakeConsul) ConnectCALeaf(service string, q *consul.QueryOptions) (*consul.LeafCert, *consul.QueryMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, q.WaitIndex)
	f.service = service
	idx := f.wait(q)
	return f.leaf, &consul.QueryMeta{LastIndex: idx}, nil
}

func (f *fakeConsul) ConnectCARoots(q *consul.QueryOptions) (*consul.CARootList, *consul.QueryMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.wait(q)
	return f.roots, &consul.QueryMeta{LastIndex: idx}, nil
}

type fakeSecrets struct {
	mu     sync.Mutex
	writes map[string][]map[string][]byte
}

func (s *fakeSecrets) Patch(_ context.Context, name string, data map[string][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writes == nil {
		s.writes = map[string][]map[string][]byte{}
	}
	s.writes[name] = append(s.writes[name], data)
	return nil
}

func (s *fakeSecrets) last(name string) (map[string][]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.writes[name]
	if len(w) == 0 {
		return nil, 0
	}
	return w[len(w)-1], len(w)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSyncFollowsRotation: the first leaf and roots are written, Ready turns true only then,
// queries carry the last index (blocking, not polling), and a rotated leaf and a new root
// reach the Secrets.
func TestSyncFollowsRotation(t *testing.T) {
	f := newFakeConsul()
	cert1, key1 := pair(t, "ambassador-1")
	root1, _ := pair(t, "root-1")
	f.set(&consul.LeafCert{CertPEM: cert1, PrivateKeyPEM: key1, SerialNumber: "01"}, &consul.CARootList{Roots: []*consul.CARoot{{ID: "r1", RootCertPEM: root1, Active: true}}})
	secrets := &fakeSecrets{}
	s := &Sync{Consul: f, Secrets: secrets, Service: "ambassador", LeafSecret: "leaf", RootsSecret: "roots", WaitTime: 200 * time.Millisecond, Backoff: 10 * time.Millisecond}
	if s.Ready() {
		t.Fatal("ready before anything was written")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	eventually(t, "the first leaf and roots", s.Ready)
	leaf, _ := secrets.last("leaf")
	roots, _ := secrets.last("roots")
	if string(leaf["tls.crt"]) != cert1 || string(leaf["tls.key"]) != key1 || string(roots["tls.crt"]) != strings.TrimSpace(root1)+"\n" {
		t.Fatalf("first write: leaf %q roots %q", leaf["tls.crt"], roots["tls.crt"])
	}
	// Consul rotates the leaf and adds a new active root (the old one stays trusted).
	cert2, key2 := pair(t, "ambassador-2")
	root2, _ := pair(t, "root-2")
	f.set(&consul.LeafCert{CertPEM: cert2, PrivateKeyPEM: key2, SerialNumber: "02"}, &consul.CARootList{Roots: []*consul.CARoot{
		{ID: "r1", RootCertPEM: root1}, {ID: "r2", RootCertPEM: root2, Active: true},
	}})
	eventually(t, "the rotated leaf", func() bool { l, _ := secrets.last("leaf"); return string(l["tls.crt"]) == cert2 })
	eventually(t, "both roots, the active first", func() bool {
		r, _ := secrets.last("roots")
		return string(r["tls.crt"]) == strings.TrimSpace(root2)+"\n"+strings.TrimSpace(root1)+"\n"
	})
	// Idle: the blocking queries time out and nothing is rewritten.
	_, n := secrets.last("leaf")
	time.Sleep(500 * time.Millisecond)
	if _, m := secrets.last("leaf"); m != n {
		t.Errorf("the leaf was rewritten %d times while nothing changed", m-n)
	}
	cancel()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.service != "ambassador" {
		t.Errorf("leaf asked for service %q", f.service)
	}
	blocking := 0
	for _, idx := range f.calls {
		if idx != 0 {
			blocking++
		}
	}
	if blocking < 2 || f.calls[0] != 0 {
		t.Errorf("leaf queries' WaitIndex %v: want the first at 0, then blocking on the last index", f.calls)
	}
}

// TestSyncRefusesBadCertificates: a leaf whose key does not match, or roots that are not
// certificates, are never written (Envoy would fail every upstream handshake).
func TestSyncRefusesBadCertificates(t *testing.T) {
	cert1, _ := pair(t, "a")
	_, otherKey := pair(t, "b")
	f := newFakeConsul()
	f.set(&consul.LeafCert{CertPEM: cert1, PrivateKeyPEM: otherKey}, &consul.CARootList{Roots: []*consul.CARoot{{ID: "r", RootCertPEM: "not a cert", Active: true}}})
	secrets := &fakeSecrets{}
	s := &Sync{Consul: f, Secrets: secrets, Service: "ambassador", LeafSecret: "leaf", RootsSecret: "roots", WaitTime: 50 * time.Millisecond, Backoff: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = s.Run(ctx)
	if len(secrets.writes) != 0 || s.Ready() {
		t.Errorf("bad certificates written: %v", secrets.writes)
	}
	if _, err := RootsBundle(&consul.CARootList{}); err == nil {
		t.Errorf("an empty root list gave a bundle")
	}
}

// TestKubeSecretsPatch: a JSON merge patch of data (base64) on the one Secret, with the
// current token, over TLS to the API server; an API error names the Secret but not its data.
func TestKubeSecretsPatch(t *testing.T) {
	var got struct {
		method, path, ctype, auth string
		body                      map[string]map[string]string
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.ctype, got.auth = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got.body)
		if strings.HasSuffix(r.URL.Path, "/forbidden") {
			http.Error(w, `secrets "forbidden" is forbidden`, http.StatusForbidden)
		}
	}))
	defer srv.Close()
	tokens := []string{"t1", "t2"}
	k := &KubeSecrets{Server: srv.URL, Namespace: "ambassador", Client: srv.Client(), Token: func() (string, error) {
		tok := tokens[0]
		tokens = tokens[1:]
		return tok, nil
	}}
	if err := k.Patch(context.Background(), "consul-connect-leaf", map[string][]byte{"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")}); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPatch || got.path != "/api/v1/namespaces/ambassador/secrets/consul-connect-leaf" ||
		got.ctype != "application/merge-patch+json" || got.auth != "Bearer t1" {
		t.Errorf("request %s %s %s %s", got.method, got.path, got.ctype, got.auth)
	}
	want := map[string]string{"tls.crt": base64.StdEncoding.EncodeToString([]byte("CERT")), "tls.key": base64.StdEncoding.EncodeToString([]byte("KEY"))}
	if !equal(got.body["data"], want) || len(got.body) != 1 {
		t.Errorf("patch body %v", got.body)
	}
	err := k.Patch(context.Background(), "forbidden", map[string][]byte{"tls.key": []byte("SECRET-KEY")})
	if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "SECRET-KEY") || got.auth != "Bearer t2" {
		t.Errorf("error %v (token %s)", err, got.auth)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
