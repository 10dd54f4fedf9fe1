package jwtauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is the body of every token we mint.
type Claims struct {
	jwt.RegisteredClaims
	Permissions []string `json:"permissions"`
	Services    []string `json:"services"`
	Origins     []string `json:"origins"`
}

// Identity is what a credential (password, client certificate, upstream
// ID token) resolves to, and what a token carries.
type Identity struct {
	ID          string
	Permissions []string
	Services    []string
	Origins     []string
	// NotAfter, when set, caps the token's exp: a client certificate's
	// token must not outlive the certificate.
	NotAfter time.Time
}

// principal is a verified caller on the check path, shaped for a fast
// decision: the permissions header is joined once.
type principal struct {
	id          string
	permHeader  string
	services    []string
	origins     []string
	certSubject string
	via         string    // reasonAllowToken or reasonAllowClientCert
	ident       *Identity // what it was built from
	notAfter    time.Time // client certificate: the verified chain's first expiry
}

func newPrincipal(id *Identity, via, certSubject string) *principal {
	return &principal{
		id:          id.ID,
		permHeader:  strings.Join(id.Permissions, ","),
		services:    id.Services,
		origins:     id.Origins,
		certSubject: certSubject,
		via:         via,
		ident:       id,
	}
}

var (
	errNoSigningKey = errors.New("no signing key loaded")
	errBadIdentity  = errors.New("identity has an empty or relative service prefix, or a permission with a comma")
)

// mintable: every service an absolute path prefix (an empty one would
// admit every path), no permission with a comma (X-User-Permissions joins
// them with commas). The files are checked at load; this guards the
// signing key against any other way in.
func mintable(id *Identity) bool {
	for _, sv := range id.Services {
		if !strings.HasPrefix(sv, "/") {
			return false
		}
	}
	for _, p := range id.Permissions {
		if p == "" || strings.ContainsRune(p, ',') {
			return false
		}
	}
	return true
}

// mint signs a token for id with the current signing key; it expires
// after the TTL or at id.NotAfter, whichever is first.
func (s *Server) mint(id *Identity) (string, time.Duration, error) {
	ks := s.keys.current()
	if ks.signKey == nil {
		return "", 0, errNoSigningKey
	}
	if !mintable(id) {
		return "", 0, errBadIdentity
	}
	now := s.cfg.Now().Truncate(time.Second)
	ttl := s.cfg.TokenTTL
	if !id.NotAfter.IsZero() {
		ttl = min(ttl, id.NotAfter.Truncate(time.Second).Sub(now))
		if ttl <= 0 {
			return "", 0, errBadIdentity
		}
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", 0, err
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			Subject:   id.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Permissions: nonNil(id.Permissions),
		Services:    nonNil(id.Services),
		Origins:     nonNil(id.Origins),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = ks.signKID
	signed, err := t.SignedString(ks.signKey)
	return toLowS(signed), ttl, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tokenVerifier checks our own tokens. Verified tokens are cached by hash
// until exp+leeway (capped) and only for the key set that verified them,
// so dropping a key from rotation also drops its cached tokens.
type tokenVerifier struct {
	maxLifetime time.Duration // exp - iat; what we mint
	keys        *keyManager
	parser      *jwt.Parser
	cache       *ttlCache[cachedToken]
	now         func() time.Time
}

// cachedToken is a verification result: a principal, or the reason
// token_expired, which is final (time only moves on), so replays of an
// expired token do not cost a signature check each.
type cachedToken struct {
	p      *principal
	reason string
	keys   *KeySet
}

// maxCacheLife bounds how long a verification result is reused.
const maxCacheLife = 5 * time.Minute

func newTokenVerifier(cfg *Config, keys *keyManager) *tokenVerifier {
	v := &tokenVerifier{maxLifetime: cfg.TokenTTL, keys: keys, now: cfg.Now, cache: newTTLCache[cachedToken](cfg.TokenCacheSize)}
	v.parser = strictParser([]string{jwt.SigningMethodES256.Alg()}, cfg.Issuer, cfg.Audience, cfg.Now)
	return v
}

// strictParser is the one parser policy for our tokens and upstream ID
// tokens: an alg allow-list, iss, aud and exp required, iat checked, 30 s
// leeway, and strict base64 so a token has one spelling only.
func strictParser(algs []string, iss, aud string, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(iss),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(now),
	)
}

// Reasons a token is refused; they are metric labels, so a fixed set.
const (
	reasonMissingCredentials = "missing_credentials"
	reasonBadAuthorization   = "bad_authorization_header"
	reasonTokenTooLarge      = "token_too_large"
	reasonMalformed          = "malformed_token"
	reasonBadSignature       = "bad_signature"
	reasonUnknownKID         = "unknown_kid"
	reasonExpired            = "token_expired"
	reasonNotYetValid        = "token_not_yet_valid"
	reasonBadIssuer          = "bad_issuer"
	reasonBadAudience        = "bad_audience"
	reasonMissingClaim       = "missing_claim"
	reasonInvalidClaims      = "invalid_claims"
	reasonNonCanonicalSig    = "non_canonical_signature"
	reasonLifetimeTooLong    = "token_lifetime_too_long"
)

var errUnknownKID = errors.New("unknown kid")

// verify returns the principal of a valid token, or a reason.
func (v *tokenVerifier) verify(tok string) (*principal, string) {
	if len(tok) > MaxTokenBytes {
		return nil, reasonTokenTooLarge
	}
	now := v.now()
	ks := v.keys.current()
	key := cacheKey(tok)
	if c, ok := v.cache.get(key, now); ok && c.keys == ks {
		return c.p, c.reason
	}
	if highS(tok) {
		return nil, reasonNonCanonicalSig
	}
	var claims Claims
	_, err := v.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k := ks.verify[kid]; k != nil {
			return k, nil
		}
		return nil, errUnknownKID
	})
	if err != nil {
		reason := tokenErrorReason(err)
		if reason == reasonExpired {
			v.cache.put(key, cachedToken{reason: reason, keys: ks}, now.Add(maxCacheLife))
		}
		return nil, reason
	}
	if claims.Subject == "" || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		return nil, reasonMissingClaim
	}
	// A correctly signed token may still outlive what we mint: a leaked
	// signing key, or a token minted under a longer TTL, must not yield
	// one valid for days.
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > v.maxLifetime {
		return nil, reasonLifetimeTooLong
	}
	id := &Identity{ID: claims.Subject, Permissions: claims.Permissions, Services: claims.Services, Origins: claims.Origins}
	if !mintable(id) { // e.g. services: [""], which would admit every path
		return nil, reasonInvalidClaims
	}
	p := newPrincipal(id, reasonAllowToken, "")
	exp := claims.ExpiresAt.Add(Leeway)
	if limit := now.Add(maxCacheLife); exp.After(limit) {
		exp = limit
	}
	v.cache.put(key, cachedToken{p: p, keys: ks}, exp)
	return p, ""
}

func tokenErrorReason(err error) string {
	switch {
	case errors.Is(err, errUnknownKID):
		return reasonUnknownKID
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return reasonBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return reasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return reasonBadIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return reasonBadAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return reasonMissingClaim
	}
	return reasonInvalidClaims
}
