// Command jwt-auth runs ztedge's JWT auth service (see docs/jwt-auth.md).
//
//	jwt-auth [flags]                serve
//	jwt-auth hash-password [-cost N] read a password on stdin, print a bcrypt hash
//	jwt-auth gen-key                 print a new P-256 signing key (SEC1 PEM)
//	jwt-auth consul-cert-sync [flags] keep Ambassador's Consul Connect certificates in Secrets
//	jwt-auth metrics-relay [flags]    serve Envoy's statistics, and nothing else, to Prometheus
//
// Every flag can also come from JWT_AUTH_<FLAG> (upper-case, dashes to
// underscores); a flag on the command line wins.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ztedge/ztedge/internal/jwtauth"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h/--help: the usage was printed; asking for it is not an error
		}
		fmt.Fprintln(os.Stderr, "jwt-auth:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "hash-password":
			return hashPassword(args[1:], stdin, stdout, stderr)
		case "gen-key":
			return genKey(stdout)
		case "consul-cert-sync":
			return consulCertSync(args[1:], stderr)
		case "metrics-relay":
			return metricsRelay(args[1:], stderr)
		}
	}
	return serve(args, stderr)
}

// envFallback sets every flag not given on the command line from
// JWT_AUTH_<NAME>, so the command line wins over the environment.
func envFallback(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "JWT_AUTH_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

func serve(args []string, stderr io.Writer) error {
	var cfg jwtauth.Config
	fs := flag.NewFlagSet("jwt-auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", ":3000", "address to listen on")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "second address serving only /metrics (for a NetworkPolicy that admits Prometheus to it alone); empty: none")
	fs.StringVar(&cfg.SigningKeysDir, "signing-keys", "", "directory of <kid>.pem ECDSA P-256 private keys; the greatest kid signs, all verify (required)")
	fs.StringVar(&cfg.Issuer, "issuer", "", "iss of minted tokens (required)")
	fs.StringVar(&cfg.Audience, "audience", "", "aud of minted tokens (required)")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", jwtauth.DefaultTokenTTL, "token lifetime, 5m to 15m")
	fs.StringVar(&cfg.UsersFile, "users", "", "YAML/JSON users file; enables grant_type=password")
	fs.StringVar(&cfg.ClientsFile, "clients", "", "YAML/JSON trusted client-certificate subjects (needs --client-ca)")
	fs.StringVar(&cfg.ClientCAFile, "client-ca", "", "PEM CA bundle forwarded client certificates must chain to (needs --clients)")
	fs.StringVar(&cfg.OIDCIssuer, "oidc-issuer", "", "upstream OIDC issuer; with --oidc-audience and --oidc-jwks-url enables token exchange")
	fs.StringVar(&cfg.OIDCAudience, "oidc-audience", "", "expected aud of upstream ID tokens")
	fs.StringVar(&cfg.OIDCJWKSURL, "oidc-jwks-url", "", "upstream JWKS URL (http or https)")
	fs.StringVar(&cfg.ClientCertHeaders, "client-cert-headers", "", "the one forwarded client-cert header to believe, by edge mode: alb-passthrough, alb-verify or xfcc (required with --clients)")
	fs.StringVar(&cfg.ClientCertHeaderName, "client-cert-header-name", "", "alb-* modes: the stack's secret name for the ALB's certificate header (set it by JWT_AUTH_CLIENT_CERT_HEADER_NAME from a Secret, not on the command line); the default names are then refused")
	hops := fs.Int("trusted-hops", 1, "proxies in front that append to X-Forwarded-For (0: use the TCP peer address)")
	fs.DurationVar(&cfg.KeyReloadInterval, "key-reload-interval", 30*time.Second, "signing-key directory poll period (negative disables; SIGHUP always reloads)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "graceful shutdown limit for in-flight requests")
	fs.IntVar(&cfg.Throttle.UserBurst, "login-user-burst", 5, "login attempts per username before throttling")
	fs.DurationVar(&cfg.Throttle.UserInterval, "login-user-interval", 12*time.Second, "one more attempt per username every")
	fs.IntVar(&cfg.Throttle.IPBurst, "login-ip-burst", 20, "/token attempts per source address before throttling")
	fs.DurationVar(&cfg.Throttle.IPInterval, "login-ip-interval", time.Second, "one more attempt per source address every")
	fs.IntVar(&cfg.Throttle.MaxHashes, "login-max-hashes", 0, "password hashes (bcrypt) running at once (0: half of GOMAXPROCS, at least 1); twice as many more may wait 1 s, the rest get 503")
	fs.IntVar(&cfg.Throttle.IPv6Prefix, "login-ipv6-prefix", 64, "IPv6 sources share one per-source bucket per prefix of this length (32-128)")
	fs.IntVar(&cfg.Throttle.MaxLoginRate, "login-max-rate", 20, "password logins per second per replica, whatever their source; beyond it 503")
	memLimit := fs.String("memory-limit", "256Mi", "memory jwt-auth may use (the pod's limit; bytes or Ki/Mi/Gi); connection and request limits derive from it, and GOMEMLIMIT defaults to 90 % of it")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := envFallback(fs); err != nil {
		return err
	}
	cfg.TrustedHops, cfg.TrustedHopsSet = *hops, true
	var err error
	if cfg.MemoryLimit, err = jwtauth.ParseBytes(*memLimit); err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))

	// The live heap is a few MiB while net/http allocates a few KiB per
	// check; at the default GOGC=100 that means a GC cycle every few tens
	// of milliseconds under load, which shows in p99. GOGC in the
	// environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// GOGC=400 lets the heap grow to five times what is live; the soft
	// limit makes the collector work harder before the pod's limit.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit / 10 * 9)
	}
	srv, err := jwtauth.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = srv.ReloadKeys()
		}
	}()
	return srv.Run(ctx)
}

// hashPassword reads one line (the password) from stdin and prints its
// bcrypt hash for the --users file.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", jwtauth.DefaultBcryptCost, "bcrypt cost (>= 12 for production)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("hash-password: empty password on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), *cost)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	_, err = fmt.Fprintln(stdout, string(h))
	return err
}

// genKey prints a fresh P-256 key in the SEC1 form pulumi-tls writes.
func genKey(stdout io.Writer) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return err
	}
	return pem.Encode(stdout, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
