package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Server is the auth service. Build it with New, serve it with Run or
// mount Handler yourself.
type Server struct {
	cfg        Config
	log        *slog.Logger
	keys       *keyManager
	verifier   *tokenVerifier
	users      *userDB       // nil: password grant off
	certs      *certAuth     // nil: client certificates off
	oidc       *oidcVerifier // nil: token exchange off
	userLimits *limiterMap
	ipLimits   *limiterMap
	hashes     *hashGate
	metrics    *metrics
	gate       requestGate
	limits     Limits
	stopping   atomic.Bool
}

// New validates cfg, loads keys and the optional files, and fails with a
// message naming the flag when anything is wrong.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(), limits: cfg.Limits, gate: make(requestGate, cfg.Limits.MaxRequests)}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	var err error
	if s.keys, err = newKeyManager(cfg.SigningKeysDir); err != nil {
		return nil, fmt.Errorf("--signing-keys: %w", err)
	}
	s.verifier = newTokenVerifier(&s.cfg, s.keys)
	s.keys.onSwap = func(ks *KeySet) {
		s.verifier.cache.purge()
		s.metrics.keys.Set(float64(len(ks.kids)))
	}
	s.metrics.keys.Set(float64(len(s.keys.current().kids)))
	if cfg.UsersFile != "" {
		if s.users, err = loadUsers(cfg.UsersFile); err != nil {
			return nil, err
		}
	}
	if cfg.ClientsFile != "" {
		c := &certAuth{mode: certModeFor(cfg.ClientCertHeaders, cfg.ClientCertHeaderName), now: cfg.Now, cache: newTTLCache[certResult](cfg.TokenCacheSize)}
		if c.roots, err = loadCertPool(cfg.ClientCAFile); err != nil {
			return nil, err
		}
		if c.clients, err = loadClients(cfg.ClientsFile); err != nil {
			return nil, err
		}
		s.certs = c
		if notAfter, err := firstExpiry(cfg.ClientCAFile); err == nil {
			s.metrics.clientCANotAfter.Set(float64(notAfter.Unix()))
		}
	}
	if cfg.OIDCJWKSURL != "" {
		s.oidc = newOIDCVerifier(&s.cfg)
	}
	t := cfg.Throttle
	s.userLimits = newLimiterMap(t.UserBurst, t.UserInterval, t.MaxEntries)
	s.ipLimits = newLimiterMap(t.IPBurst, t.IPInterval, t.MaxEntries)
	s.hashes = newHashGate(t)
	ks := s.keys.current()
	s.log.Info("starting", slog.String("signing_kid", ks.signKID), slog.Any("kids", ks.kids),
		slog.Bool("password_grant", s.users != nil), slog.Bool("client_certificates", s.certs != nil),
		slog.Bool("token_exchange", s.oidc != nil), slog.String("token_ttl", cfg.TokenTTL.String()),
		slog.Int64("memory_limit_mib", cfg.MemoryLimit>>20), slog.Int("max_connections", cfg.Limits.MaxConnections),
		slog.Int("max_requests", cfg.Limits.MaxRequests))
	if len(ks.kids) == 0 {
		s.log.Warn("no signing keys yet; /readyz reports not ready until one appears", slog.String("dir", cfg.SigningKeysDir))
	}
	return s, nil
}

// ReloadKeys re-reads the signing-key directory now (SIGHUP calls this).
func (s *Server) ReloadKeys() error {
	changed, err := s.keys.reload()
	switch {
	case err != nil:
		s.metrics.reloads.WithLabelValues("error").Inc()
		s.log.Error("signing key reload failed; keeping previous keys", slog.String("error", err.Error()))
	case changed:
		s.metrics.reloads.WithLabelValues("changed").Inc()
		ks := s.keys.current()
		s.log.Info("signing keys reloaded", slog.String("signing_kid", ks.signKID), slog.Any("kids", ks.kids))
	default:
		s.metrics.reloads.WithLabelValues("unchanged").Inc()
	}
	return err
}

// KeySet is the key snapshot in force.
func (s *Server) KeySet() *KeySet { return s.keys.current() }

// Handler routes requests by hand rather than with http.ServeMux: the mux
// would answer /auth/a/../b with a 301 redirect, which Emissary would pass
// to the client instead of a deny.
func (s *Server) Handler() http.Handler {
	mh := s.metrics.handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == checkPrefix || strings.HasPrefix(p, checkPrefix+"/"):
			s.handleCheck(w, r) // one request per connection, no body: the connection limit bounds it
		case p == "/token":
			s.gated(w, r, s.handleToken)
		case p == "/.well-known/jwks.json" && getOrHead(w, r):
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=60")
			_, _ = w.Write(s.keys.current().jwks)
		case p == "/healthz" && getOrHead(w, r):
			_, _ = w.Write([]byte("ok\n"))
		case p == "/readyz" && getOrHead(w, r):
			if s.stopping.Load() || s.keys.current().signKey == nil {
				http.Error(w, "not ready: no signing key loaded or shutting down", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready\n"))
		case p == "/metrics" && getOrHead(w, r):
			mh.ServeHTTP(w, r)
		case p == "/.well-known/jwks.json", p == "/healthz", p == "/readyz", p == "/metrics":
			// getOrHead already answered 405
		default:
			writeJSONError(w, http.StatusNotFound, "not_found", "error_description", "no such endpoint")
		}
	})
}

func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// HTTPServer returns the http.Server with the timeouts we run with.
// WriteTimeout is generous because /token can wait on the upstream JWKS;
// IdleTimeout is long because Envoy keeps pooled connections to us and a
// server-side close racing a reused connection shows up as a 503.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              s.cfg.Listen,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// MetricsServer serves /metrics and nothing else (cfg.MetricsListen).
func (s *Server) MetricsServer() *http.Server {
	mh := s.metrics.handler()
	return &http.Server{
		Addr: s.cfg.MetricsListen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			if getOrHead(w, r) {
				mh.ServeHTTP(w, r)
			}
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Run listens on cfg.Listen until ctx ends (SIGTERM), then stops
// accepting, lets in-flight requests finish within ShutdownTimeout and
// returns. It also polls the key directory.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a given listener (tests use 127.0.0.1:0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = s.limitListener(ln)
	srv := s.HTTPServer()
	if s.cfg.KeyReloadInterval > 0 {
		go s.pollKeys(ctx)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("listening", slog.String("addr", ln.Addr().String()))
	var msrv *http.Server
	if s.cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsListen)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		msrv = s.MetricsServer()
		go func() { errc <- msrv.Serve(mln) }()
		s.log.Info("metrics listening", slog.String("addr", mln.Addr().String()))
	}
	select {
	case err := <-errc:
		_ = srv.Close()
		if msrv != nil {
			_ = msrv.Close()
		}
		return err
	case <-ctx.Done():
	}
	if msrv != nil {
		_ = msrv.Close() // scrapes are not worth waiting for
	}
	s.stopping.Store(true)
	s.log.Info("shutting down", slog.String("timeout", s.cfg.ShutdownTimeout.String()))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) pollKeys(ctx context.Context) {
	t := time.NewTicker(s.cfg.KeyReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.ReloadKeys()
		}
	}
}
