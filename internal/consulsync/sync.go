// Package consulsync keeps Ambassador's Consul Connect identity in two Kubernetes Secrets: its
// leaf certificate and key (kubernetes.io/tls) and the Connect CA roots (tls.crt, every root, so
// a CA rotation's old and new roots are both trusted while it lasts). It follows Consul's
// blocking queries on /v1/agent/connect/ca/leaf/<service> and /v1/agent/connect/ca/roots, so a
// renewed leaf or a new root is in the Secret seconds after Consul has it; Emissary watches
// Secrets and reloads Envoy. It runs as `jwt-auth consul-cert-sync` (cmd/jwt-auth).
//
// It writes through the Kubernetes API with a JSON merge patch on the two Secrets only: ztedge
// creates them empty, and the sync's Role grants get and patch on those two names, nothing else.
package consulsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// Consul is the part of Consul's agent API the sync uses (consul.Agent satisfies it).
type Consul interface {
	ConnectCALeaf(serviceID string, q *consul.QueryOptions) (*consul.LeafCert, *consul.QueryMeta, error)
	ConnectCARoots(q *consul.QueryOptions) (*consul.CARootList, *consul.QueryMeta, error)
}

// Secrets writes a Secret's data keys.
type Secrets interface {
	Patch(ctx context.Context, name string, data map[string][]byte) error
}

// Sync follows the leaf certificate of Service and the CA roots into LeafSecret and RootsSecret.
type Sync struct {
	Consul      Consul
	Secrets     Secrets
	Service     string
	Datacenter  string
	LeafSecret  string
	RootsSecret string
	// WaitTime bounds each blocking query (Consul's default is 5 minutes).
	WaitTime time.Duration
	// Backoff after an error (Consul down, patch refused).
	Backoff time.Duration
	Log     *slog.Logger

	leafWritten, rootsWritten atomic.Bool
}

// Ready reports whether both Secrets have been written at least once.
func (s *Sync) Ready() bool { return s.leafWritten.Load() && s.rootsWritten.Load() }

// Run follows both until ctx ends.
func (s *Sync) Run(ctx context.Context) error {
	if s.Service == "" || s.LeafSecret == "" || s.RootsSecret == "" || s.Consul == nil || s.Secrets == nil {
		return errors.New("consulsync: Service, LeafSecret, RootsSecret, Consul and Secrets are required")
	}
	if s.Log == nil {
		s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	done := make(chan struct{}, 2)
	go func() { s.follow(ctx, "leaf", s.leafOnce); done <- struct{}{} }()
	go func() { s.follow(ctx, "roots", s.rootsOnce); done <- struct{}{} }()
	<-done
	<-done
	return ctx.Err()
}

// follow repeats one blocking query, carrying its index, until ctx ends.
func (s *Sync) follow(ctx context.Context, what string, once func(ctx context.Context, index uint64) (uint64, error)) {
	var index uint64
	for ctx.Err() == nil {
		next, err := once(ctx, index)
		if err != nil {
			s.Log.Warn("consul-cert-sync: "+what, "error", err)
			index = 0 // start over: the next query answers at once
			select {
			case <-ctx.Done():
			case <-time.After(s.Backoff):
			}
			continue
		}
		// An index that goes backwards (a Consul snapshot restore) resets the wait.
		if next < index {
			next = 0
		}
		index = next
	}
}

func (s *Sync) query(ctx context.Context, index uint64) *consul.QueryOptions {
	return (&consul.QueryOptions{Datacenter: s.Datacenter, WaitIndex: index, WaitTime: s.WaitTime}).WithContext(ctx)
}

func (s *Sync) leafOnce(ctx context.Context, index uint64) (uint64, error) {
	leaf, meta, err := s.Consul.ConnectCALeaf(s.Service, s.query(ctx, index))
	if err != nil {
		return 0, err
	}
	if meta.LastIndex == index && s.leafWritten.Load() {
		return index, nil // the wait timed out: nothing changed
	}
	if leaf == nil || leaf.CertPEM == "" || leaf.PrivateKeyPEM == "" {
		return 0, errors.New("Consul returned no leaf certificate")
	}
	if _, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.PrivateKeyPEM)); err != nil {
		return 0, fmt.Errorf("leaf certificate and key do not match: %w", err)
	}
	if err := s.Secrets.Patch(ctx, s.LeafSecret, map[string][]byte{"tls.crt": []byte(leaf.CertPEM), "tls.key": []byte(leaf.PrivateKeyPEM)}); err != nil {
		return 0, err
	}
	s.leafWritten.Store(true)
	s.Log.Info("consul-cert-sync: leaf written", "secret", s.LeafSecret, "serial", leaf.SerialNumber, "validBefore", leaf.ValidBefore)
	return meta.LastIndex, nil
}

func (s *Sync) rootsOnce(ctx context.Context, index uint64) (uint64, error) {
	roots, meta, err := s.Consul.ConnectCARoots(s.query(ctx, index))
	if err != nil {
		return 0, err
	}
	if meta.LastIndex == index && s.rootsWritten.Load() {
		return index, nil
	}
	bundle, err := RootsBundle(roots)
	if err != nil {
		return 0, err
	}
	if err := s.Secrets.Patch(ctx, s.RootsSecret, map[string][]byte{"tls.crt": bundle}); err != nil {
		return 0, err
	}
	s.rootsWritten.Store(true)
	s.Log.Info("consul-cert-sync: roots written", "secret", s.RootsSecret, "roots", len(roots.Roots))
	return meta.LastIndex, nil
}

// RootsBundle is every root's certificate, active one first, each checked to be a PEM certificate.
func RootsBundle(list *consul.CARootList) ([]byte, error) {
	if list == nil || len(list.Roots) == 0 {
		return nil, errors.New("Consul returned no CA roots")
	}
	var active, others bytes.Buffer
	for _, r := range list.Roots {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(r.RootCertPEM)) {
			return nil, fmt.Errorf("CA root %q is not a PEM certificate", r.ID)
		}
		out := &others
		if r.Active {
			out = &active
		}
		out.WriteString(strings.TrimSpace(r.RootCertPEM) + "\n")
	}
	return append(active.Bytes(), others.Bytes()...), nil
}

// KubeSecrets patches Secrets of one namespace through the API server, as the pod's service
// account (in-cluster configuration: the token and CA Kubernetes mounts into the pod).
type KubeSecrets struct {
	Server    string // https://host:port
	Namespace string
	Token     func() (string, error) // re-read each time: the projected token rotates
	Client    *http.Client
}

// InCluster is KubeSecrets for the pod it runs in.
func InCluster(namespace string) (*KubeSecrets, error) {
	const dir = "/var/run/secrets/kubernetes.io/serviceaccount/"
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not running in a pod: KUBERNETES_SERVICE_HOST/PORT are unset")
	}
	ca, err := os.ReadFile(dir + "ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the service account's ca.crt holds no certificate")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return &KubeSecrets{
		Server: "https://" + host + ":" + port, Namespace: namespace,
		Token: func() (string, error) {
			b, err := os.ReadFile(dir + "token")
			return strings.TrimSpace(string(b)), err
		},
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
	}, nil
}

// Patch sets data keys of a Secret with a JSON merge patch (other keys are kept).
func (k *KubeSecrets) Patch(ctx context.Context, name string, data map[string][]byte) error {
	enc := map[string]string{}
	for key, v := range data {
		enc[key] = base64.StdEncoding.EncodeToString(v)
	}
	body, err := json.Marshal(map[string]any{"data": enc})
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/secrets/%s", k.Server, k.Namespace, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	token, err := k.Token()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := k.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		// The response describes the request, never the Secret's data.
		return fmt.Errorf("patch secret %s/%s: %s: %s", k.Namespace, name, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
