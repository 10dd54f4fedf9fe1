package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// oidcVerifier checks upstream OIDC ID tokens for token exchange against
// the upstream JWKS, fetched over HTTP(S) and cached.
type oidcVerifier struct {
	jwksURL string
	client  *http.Client
	ttl     time.Duration
	now     func() time.Time
	parser  *jwt.Parser

	mu      sync.Mutex
	keys    map[string]jose.JSONWebKey
	fetched time.Time // last successful fetch: opens the refetch window
	failed  time.Time // last failed fetch: a short back-off only
}

const (
	maxJWKSBytes     = 1 << 20
	maxIDTokenBytes  = 16 << 10
	minRefetchPeriod = 10 * time.Second
	// retryAfterFailure spaces fetches while the upstream fails, so an
	// outage past the cache TTL does not cost every exchange a timeout; it
	// is short because a failure leaves nothing new to wait for.
	retryAfterFailure = time.Second
	minRSABits        = 2048
)

func newOIDCVerifier(cfg *Config) *oidcVerifier {
	return &oidcVerifier{
		jwksURL: cfg.OIDCJWKSURL,
		client:  cfg.HTTPClient,
		ttl:     cfg.OIDCJWKSCacheTTL,
		now:     cfg.Now,
		parser:  strictParser([]string{"RS256", "ES256"}, cfg.OIDCIssuer, cfg.OIDCAudience, cfg.Now),
	}
}

// verify returns the upstream subject of a valid ID token.
func (o *oidcVerifier) verify(ctx context.Context, tok string) (string, error) {
	if len(tok) > maxIDTokenBytes {
		return "", errors.New("subject_token too large")
	}
	var claims jwt.RegisteredClaims
	_, err := o.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return o.key(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return "", err
	}
	if claims.Subject == "" {
		return "", errors.New("subject_token has no sub")
	}
	return claims.Subject, nil
}

// key finds the verification key for kid, refreshing the JWKS when it is
// stale or the kid is new (upstream rotated): at most every 10 s after a
// successful fetch, every second while fetches fail. The fetch does not
// run on the caller's context: a caller who sends an unknown kid and hangs
// up must not cancel the fetch and so spend the window for everyone (no
// exchange would then work for 10 s, and a new replica would never load
// the JWKS).
func (o *oidcVerifier) key(ctx context.Context, kid, alg string) (any, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	k, ok := o.lookup(kid)
	stale := now.Sub(o.fetched) > o.ttl
	if (!ok || stale) && o.mayFetch(now) {
		if err := o.fetch(context.WithoutCancel(ctx)); err != nil {
			o.failed = now
			if o.keys == nil {
				return nil, err
			}
		}
		k, ok = o.lookup(kid)
	}
	if !ok {
		return nil, fmt.Errorf("no upstream key for kid %q", kid)
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("upstream key %q is not a signing key", kid)
	}
	if k.Algorithm != "" && k.Algorithm != alg {
		return nil, fmt.Errorf("upstream key %q is for %s, token uses %s", kid, k.Algorithm, alg)
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if alg != "RS256" || pub.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("upstream key %q unusable for %s", kid, alg)
		}
	case *ecdsa.PublicKey:
		if alg != "ES256" || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("upstream key %q unusable for %s", kid, alg)
		}
	default:
		return nil, fmt.Errorf("upstream key %q has unsupported type %T", kid, k.Key)
	}
	return k.Key, nil
}

// mayFetch: the last success is older than the refetch window and the
// last failure older than the back-off.
func (o *oidcVerifier) mayFetch(now time.Time) bool {
	return (o.fetched.IsZero() || now.Sub(o.fetched) >= minRefetchPeriod) &&
		(o.failed.IsZero() || now.Sub(o.failed) >= retryAfterFailure)
}

// lookup finds kid; a token without kid may use the only key there is.
func (o *oidcVerifier) lookup(kid string) (jose.JSONWebKey, bool) {
	if kid == "" && len(o.keys) == 1 {
		for _, k := range o.keys {
			return k, true
		}
	}
	k, ok := o.keys[kid]
	return k, ok
}

func (o *oidcVerifier) fetch(ctx context.Context) error {
	timeout := 5 * time.Second
	if o.client.Timeout > 0 {
		timeout = o.client.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.jwksURL, nil)
	if err != nil {
		return fmt.Errorf("upstream JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upstream JWKS: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("upstream JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return errors.New("upstream JWKS: too large")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("upstream JWKS: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.IsPublic() {
			keys[k.KeyID] = k
		}
	}
	o.keys, o.fetched = keys, o.now()
	return nil
}
