package jwtauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestTokensCanonicalAndBounded: of the two ECDSA spellings of a token
// only the low-S one is accepted (and the only one we mint), and a
// correctly signed token living longer than the configured TTL is refused.
func TestTokensCanonicalAndBounded(t *testing.T) {
	e := newEnv(t, nil)
	key := e.keys["2024-01"]
	for range 8 {
		tok := sign(t, key, "2024-01", e.claims())
		low := toLowS(tok)
		sig, s, dot, _ := es256S(low)
		s.Sub(p256N, s).FillBytes(sig[32:])
		high := low[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
		if st, _, body := e.check("/api/orders", bearer(low)); st != 200 {
			t.Fatalf("low-S spelling: %d %s", st, body)
		}
		if st, _, body := e.check("/api/orders", bearer(high)); st != 401 || !strings.Contains(body, reasonNonCanonicalSig) {
			t.Fatalf("high-S spelling of a valid token: %d %s, want 401 %s", st, body, reasonNonCanonicalSig)
		}
	}
	for range 16 { // P(16 low-S by chance) = 2^-16
		tok, _, err := e.srv.mint(&Identity{ID: "alice"})
		if err != nil || highS(tok) {
			t.Fatalf("minted %q, %v: want a low-S token", tok, err)
		}
	}

	c := e.claims()
	c["exp"] = e.clk.now().Add(time.Hour).Unix()
	if st, _, body := e.check("/api/orders", bearer(sign(t, key, "2024-01", c))); st != 401 || !strings.Contains(body, reasonLifetimeTooLong) {
		t.Fatalf("1 h token with a 10 m TTL: %d %s, want 401 %s", st, body, reasonLifetimeTooLong)
	}
	c["iat"] = e.clk.now().Add(-50 * time.Minute).Unix() // backdated iat: still 1 h
	if st, _, body := e.check("/api/orders", bearer(sign(t, key, "2024-01", c))); st != 401 || !strings.Contains(body, reasonLifetimeTooLong) {
		t.Fatalf("backdated 1 h token: %d %s", st, body)
	}
	delete(c, "iat")
	if st, _, body := e.check("/api/orders", bearer(sign(t, key, "2024-01", c))); st != 401 || !strings.Contains(body, reasonMissingClaim) {
		t.Fatalf("token without iat: %d %s", st, body)
	}
	c = e.claims()
	c["exp"] = e.clk.now().Add(DefaultTokenTTL).Unix()
	if st, _, body := e.check("/api/orders", bearer(toLowS(sign(t, key, "2024-01", c)))); st != 200 {
		t.Fatalf("token of exactly the TTL: %d %s", st, body)
	}
}
