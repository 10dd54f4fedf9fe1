package jwtauth

import (
	"crypto/elliptic"
	"encoding/base64"
	"math/big"
	"strings"
)

// ECDSA signatures are malleable: if (r, s) verifies, so does (r, N-s).
// A token therefore has two spellings unless one is chosen; we mint and
// accept only the low-S one (s <= N/2, as Bitcoin and Ethereum do), so
// the verified-token cache, logs and any replay bookkeeping keyed on the
// token string see one token, not two.

var (
	p256N     = elliptic.P256().Params().N
	p256HalfN = new(big.Int).Rsh(p256N, 1)
)

// es256S splits a compact JWS into the part before the signature's S and
// S itself; ok is false when the signature is not 64 bytes of base64url.
func es256S(tok string) (sig []byte, s *big.Int, dot int, ok bool) {
	dot = strings.LastIndexByte(tok, '.')
	if dot < 0 {
		return nil, nil, 0, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil || len(sig) != 64 {
		return nil, nil, 0, false
	}
	return sig, new(big.Int).SetBytes(sig[32:]), dot, true
}

// highS reports an ES256 token signed with the high-S spelling. Tokens
// that do not even look like ES256 are left to the parser to refuse.
func highS(tok string) bool {
	_, s, _, ok := es256S(tok)
	return ok && s.Cmp(p256HalfN) > 0
}

// toLowS rewrites an ES256 token's signature to its low-S spelling.
func toLowS(tok string) string {
	sig, s, dot, ok := es256S(tok)
	if !ok || s.Cmp(p256HalfN) <= 0 {
		return tok
	}
	s.Sub(p256N, s).FillBytes(sig[32:])
	return tok[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}
