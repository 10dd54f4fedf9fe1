// Package jwtauth is ztedge's JWT auth service: it mints short-lived ES256
// access tokens (POST /token) and answers Emissary-ingress ext_authz checks
// (ANY /auth/<original path>).
//
// Files by concern: config.go (settings), keys.go (signing keys, rotation,
// JWKS), tokens.go (minting and verifying our tokens), cache.go (bounded TTL
// cache), check.go (the ext_authz decision), grants.go (POST /token),
// clientcert.go and xfcc.go (forwarded client certificates), users.go
// (--users and --clients files), oidc.go (upstream ID tokens), throttle.go
// (login throttling), audit.go (decision log), metrics.go, server.go.
package jwtauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"
)

// Fixed limits of the token contract. They are constants rather than knobs
// because other components rely on them.
const (
	MinTokenTTL     = 5 * time.Minute
	MaxTokenTTL     = 15 * time.Minute
	DefaultTokenTTL = 10 * time.Minute
	// Leeway absorbs clock skew between pods for exp, nbf and iat.
	Leeway = 30 * time.Second
	// MaxTokenBytes bounds a bearer token; longer ones are refused before any
	// parsing so that parsing cost cannot be driven up by the caller.
	MaxTokenBytes = 8 << 10
	// DefaultBcryptCost is used for hashes this program generates.
	DefaultBcryptCost = 12
	// MaxUsernameBytes bounds a username: longer ones are refused before
	// any state (a throttle bucket) is kept for them.
	MaxUsernameBytes = 256
)

// Client-certificate header modes (Config.ClientCertHeaders): each names
// the one header its edge sets. A request carrying any other certificate
// header is refused, since only a client can have put it there.
const (
	CertHeadersALBPassthrough = "alb-passthrough" // X-Amzn-Mtls-Clientcert (the chain)
	CertHeadersALBVerify      = "alb-verify"      // X-Amzn-Mtls-Clientcert-Leaf
	CertHeadersXFCC           = "xfcc"            // x-forwarded-client-cert (Envoy terminates TLS)
)

// Config is everything New needs. Zero values get the defaults noted.
type Config struct {
	Listen string // default ":3000"
	// MetricsListen, when set, serves /metrics (only) on a second address, so a
	// NetworkPolicy can admit Prometheus to that port without admitting it to
	// /auth and /token. /metrics stays on Listen too.
	MetricsListen  string
	SigningKeysDir string        // required: <kid>.pem files
	Issuer         string        // required: iss of minted tokens
	Audience       string        // required: aud of minted tokens
	TokenTTL       time.Duration // default 10m, must be within [5m, 15m]

	UsersFile    string // optional: enables grant_type=password (and OIDC mapping)
	ClientsFile  string // optional: client-certificate subjects
	ClientCAFile string // optional: CA bundle forwarded client certs must chain to

	OIDCIssuer   string // optional trio: enables token exchange
	OIDCAudience string
	OIDCJWKSURL  string
	// OIDCJWKSCacheTTL is how long a fetched upstream JWKS is used (default 5m).
	OIDCJWKSCacheTTL time.Duration
	// HTTPClient fetches the upstream JWKS (default: 5 s timeout).
	HTTPClient *http.Client

	// ClientCertHeaders is the mode: which one forwarded-certificate header
	// is believed (alb-passthrough, alb-verify or xfcc); required with
	// ClientsFile. Only the edge may set it.
	ClientCertHeaders string
	// ClientCertHeaderName, in an alb-* mode, is the name the stack's ALB
	// gives its certificate header instead of the default (listener
	// attribute routing.http.request.x_amzn_mtls_clientcert*.header_name):
	// a secret, so that no client can send the header jwt-auth believes,
	// whatever the ALB does with client copies. The default names are then
	// refused like any foreign certificate header.
	ClientCertHeaderName string
	// TrustedHops is how many proxies in front of us append to
	// X-Forwarded-For; the source address for throttling is the entry that
	// many places from the right. 0 means use the TCP peer (RemoteAddr).
	// Default (when TrustedHopsSet is false) is 1: Emissary appends the
	// client address it saw.
	TrustedHops    int
	TrustedHopsSet bool

	// KeyReloadInterval is the signing-key directory poll period (default
	// 30s; negative disables polling, SIGHUP/ReloadKeys still work).
	KeyReloadInterval time.Duration
	// ShutdownTimeout bounds graceful shutdown (default 20s).
	ShutdownTimeout time.Duration

	Throttle ThrottleConfig

	// MemoryLimit is the memory jwt-auth may use (default 256 MiB, the
	// pod's limit); the connection and request limits derive from it
	// (LimitsFor) unless Limits sets them.
	MemoryLimit int64
	Limits      Limits

	// TokenCacheSize bounds the verified-token cache (default 10000,
	// negative disables it).
	TokenCacheSize int

	// Logger receives the JSON audit log (default: JSON to stdout).
	Logger *slog.Logger
	// Now is the clock (tests move it); default time.Now.
	Now func() time.Time
}

// ThrottleConfig sets the login token buckets. A bucket refills one attempt
// per Interval up to Burst.
type ThrottleConfig struct {
	UserBurst    int           // default 5
	UserInterval time.Duration // default 12s (5 per minute)
	IPBurst      int           // default 20
	IPInterval   time.Duration // default 1s
	MaxEntries   int           // per map, default 10000
	// IPv6Prefix is the prefix length an IPv6 source is throttled by
	// (default 64): one host holds a whole /64, so per-address buckets
	// would give it 2^64 of them.
	IPv6Prefix int

	// Password hashing (bcrypt) across all sources: at most MaxHashes at
	// once (default half the CPUs, at least one, so checks keep the other
	// half under a login flood), MaxHashQueue more waiting up to
	// MaxHashWait (defaults 2×MaxHashes, 1s), at most MaxLoginRate
	// attempts per second per replica (default 20); the rest get 503.
	MaxHashes    int
	MaxHashQueue int
	MaxHashWait  time.Duration
	MaxLoginRate int
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":3000"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if !c.TrustedHopsSet {
		c.TrustedHops = 1
	}
	if c.KeyReloadInterval == 0 {
		c.KeyReloadInterval = 30 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.OIDCJWKSCacheTTL == 0 {
		c.OIDCJWKSCacheTTL = 5 * time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = 10000
	}
	t := &c.Throttle
	if t.UserBurst == 0 {
		t.UserBurst = 5
	}
	if t.UserInterval == 0 {
		t.UserInterval = 12 * time.Second
	}
	if t.IPBurst == 0 {
		t.IPBurst = 20
	}
	if t.IPInterval == 0 {
		t.IPInterval = time.Second
	}
	if t.MaxEntries == 0 {
		t.MaxEntries = 10000
	}
	if t.IPv6Prefix == 0 {
		t.IPv6Prefix = 64
	}
	if t.MaxHashes == 0 {
		t.MaxHashes = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if t.MaxHashQueue == 0 {
		t.MaxHashQueue = 2 * t.MaxHashes
	}
	if t.MaxHashWait == 0 {
		t.MaxHashWait = time.Second
	}
	if t.MaxLoginRate == 0 {
		t.MaxLoginRate = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	derived := LimitsFor(c.MemoryLimit)
	if c.Limits.MaxConnections == 0 {
		c.Limits.MaxConnections = derived.MaxConnections
	}
	if c.Limits.MaxRequests == 0 {
		c.Limits.MaxRequests = derived.MaxRequests
	}
}

// Validate reports the first configuration error, naming the flag.
func (c *Config) Validate() error {
	if c.SigningKeysDir == "" {
		return errors.New("--signing-keys is required (directory of <kid>.pem P-256 keys)")
	}
	if c.Issuer == "" {
		return errors.New("--issuer is required")
	}
	if c.Audience == "" {
		return errors.New("--audience is required")
	}
	if c.TokenTTL < MinTokenTTL || c.TokenTTL > MaxTokenTTL {
		return fmt.Errorf("--token-ttl %s is outside the allowed range %s to %s", c.TokenTTL, MinTokenTTL, MaxTokenTTL)
	}
	if (c.ClientsFile == "") != (c.ClientCAFile == "") {
		return errors.New("--clients and --client-ca must be given together")
	}
	if _, known := certModes[c.ClientCertHeaders]; c.ClientsFile != "" && !known {
		return fmt.Errorf("--client-cert-headers %q: with --clients give the header your edge sets: alb-passthrough, alb-verify or xfcc", c.ClientCertHeaders)
	}
	if err := ValidCertHeaderName(c.ClientCertHeaderName, c.ClientCertHeaders); err != nil {
		return err
	}
	oidcSet := 0
	for _, v := range []string{c.OIDCIssuer, c.OIDCAudience, c.OIDCJWKSURL} {
		if v != "" {
			oidcSet++
		}
	}
	if oidcSet != 0 && oidcSet != 3 {
		return errors.New("--oidc-issuer, --oidc-audience and --oidc-jwks-url must be given together")
	}
	if oidcSet == 3 && c.UsersFile == "" {
		return errors.New("--oidc-* needs --users: upstream subjects are mapped to users by oidc_subject")
	}
	if c.MemoryLimit < MinMemoryLimit {
		return fmt.Errorf("--memory-limit %d MiB is too small: jwt-auth needs at least %d MiB (give the pod's memory limit)", c.MemoryLimit>>20, MinMemoryLimit>>20)
	}
	if c.Limits.MaxConnections < 1 || c.Limits.MaxRequests < 1 {
		return errors.New("connection and request limits must be positive")
	}
	if c.TrustedHops < 0 {
		return errors.New("--trusted-hops must be >= 0")
	}
	t := c.Throttle
	if t.UserBurst < 1 || t.IPBurst < 1 || t.UserInterval <= 0 || t.IPInterval <= 0 || t.MaxEntries < 1 {
		return errors.New("login throttle settings must be positive")
	}
	if t.IPv6Prefix < 32 || t.IPv6Prefix > 128 {
		return fmt.Errorf("--login-ipv6-prefix %d must be between 32 and 128 (64: one bucket per /64, what one host is given)", t.IPv6Prefix)
	}
	if t.MaxHashes < 1 || t.MaxHashQueue < 0 || t.MaxHashWait <= 0 || t.MaxLoginRate < 1 {
		return errors.New("--login-max-hashes and --login-max-rate must be positive")
	}
	return nil
}
