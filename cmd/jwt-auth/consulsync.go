package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/ztedge/ztedge/internal/consulsync"
)

// consulCertSync runs `jwt-auth consul-cert-sync`: Ambassador's Consul Connect leaf certificate
// and the CA roots, followed into two Secrets (internal/consulsync). It ships in the jwt-auth
// image so the edge runs no second image. The ACL token comes only from CONSUL_HTTP_TOKEN (a
// Secret), never from a flag, so it is not in the pod spec or the process list.
func consulCertSync(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("consul-cert-sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.String("consul-address", "", "Consul HTTP API, https://host:port")
	datacenter := fs.String("datacenter", "", "Consul datacenter")
	service := fs.String("service", "ambassador", "Connect service whose leaf certificate to follow")
	leaf := fs.String("leaf-secret", "", "Secret (kubernetes.io/tls) for the leaf certificate and key")
	roots := fs.String("roots-secret", "", "Secret whose tls.crt holds the CA roots")
	listen := fs.String("listen", ":8080", "address of /ready (200 once both Secrets are written)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *address == "" || *leaf == "" || *roots == "" {
		return errors.New("consul-cert-sync: -consul-address, -leaf-secret and -roots-secret are required")
	}
	cfg := consul.DefaultConfig() // CONSUL_HTTP_TOKEN, CONSUL_CACERT from the environment
	cfg.Address = *address
	client, err := consul.NewClient(cfg)
	if err != nil {
		return err
	}
	secrets, err := consulsync.InCluster(os.Getenv("POD_NAMESPACE"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	s := &consulsync.Sync{
		Consul: client.Agent(), Secrets: secrets, Service: *service, Datacenter: *datacenter,
		LeafSecret: *leaf, RootsSecret: *roots, WaitTime: 5 * time.Minute, Backoff: 5 * time.Second, Log: log,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "certificates not written yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("consul-cert-sync: health listener", "error", err)
			stop()
		}
	}()
	defer srv.Close()
	if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
