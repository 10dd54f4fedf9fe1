// Package metricsrelay serves Envoy's Prometheus statistics, and nothing else, to Prometheus.
//
// Emissary's admin port (8877) is not a metrics endpoint: besides /metrics it proxies every path
// to diagd, which trusts a client-sent X-Ambassador-Diag-IP header (POST /_internal/v0/watt?url=
// loads a configuration from any URL and pushes it to Envoy), and it serves /debug/pprof/ with no
// check at all (cmd/entrypoint/healthcheck_server.go, Emissary v4.1.0). Envoy's own admin
// listener (127.0.0.1:8001, where diagd reads the statistics too) is a control API as well
// (/quitquitquit, /drain_listeners). The relay runs beside Envoy in the Ambassador pod, so only
// its port needs to admit Prometheus: it answers GET /metrics with one fixed request to Envoy's
// /stats/prometheus and forwards nothing the scraper sent — no header, no query, no body.
package metricsrelay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// EnvoyStats is Envoy's Prometheus endpoint on the admin listener Emissary binds to loopback
// (diagnostics/envoy_stats.py reads the same URL).
const EnvoyStats = "http://127.0.0.1:8001/stats/prometheus"

// Relay answers scrapes from one upstream URL.
type Relay struct {
	Upstream string
	Client   *http.Client
	// MaxBytes bounds one answer (a cluster per backend and route: tens of MB at 200 backends).
	MaxBytes int64
	// scrapes bounds concurrent upstream requests: a flood of scrapes is not a flood on Envoy.
	scrapes chan struct{}
	Log     *slog.Logger
}

// New is a Relay with the bounds the Ambassador pod runs it with.
func New(upstream string, log *slog.Logger) *Relay {
	return &Relay{
		Upstream: upstream,
		Client:   &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		MaxBytes: 256 << 20,
		scrapes:  make(chan struct{}, 4),
		Log:      log,
	}
}

// ServeHTTP serves exactly GET (or HEAD) /metrics.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/metrics" || req.URL.RawPath != "" {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	select {
	case r.scrapes <- struct{}{}:
		defer func() { <-r.scrapes }()
	default:
		http.Error(w, "too many scrapes at once", http.StatusServiceUnavailable)
		return
	}
	if err := r.relay(req.Context(), w, req.Method == http.MethodHead); err != nil {
		r.Log.Warn("scrape failed", slog.String("upstream", r.Upstream), slog.String("error", err.Error()))
	}
}

// relay makes a fresh request to the upstream (nothing of the scraper's) and copies the answer.
func (r *Relay) relay(ctx context.Context, w http.ResponseWriter, head bool) error {
	up, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Upstream, nil)
	if err != nil {
		http.Error(w, "bad upstream", http.StatusInternalServerError)
		return err
	}
	resp, err := r.Client.Do(up)
	if err != nil {
		http.Error(w, "envoy statistics unavailable", http.StatusBadGateway)
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		http.Error(w, "envoy statistics unavailable", http.StatusBadGateway)
		return fmt.Errorf("upstream answered %s", resp.Status)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if head {
		return nil
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, r.MaxBytes+1))
	if err == nil && n > r.MaxBytes {
		// Prometheus drops a cut-short answer; say why in the log.
		return fmt.Errorf("answer cut at %d bytes", r.MaxBytes)
	}
	return err
}

// Server is the relay's HTTP server on addr, with timeouts a slow scraper cannot hold open.
func Server(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
