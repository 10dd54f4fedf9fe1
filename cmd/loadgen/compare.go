package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxFreshTokens bounds -fresh-tokens (each is signed before the run).
const maxFreshTokens = 200_000

// freshTokens signs n distinct tokens with the key in file (<kid>.pem), so
// that every check is jwt-auth's first sight of its token: ES256
// verification and claim decoding instead of a cache hit. They are low-S
// (jwt-auth refuses the other spelling) and valid for five minutes.
func freshTokens(file, issuer, audience, origin string, n int) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", file)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	kid := strings.TrimSuffix(filepath.Base(file), ".pem")
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": kid, "typ": "JWT"})
	now := time.Now().Unix()
	half := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
	toks := make([]string, 0, n)
	for i := range n {
		claims, _ := json.Marshal(map[string]any{"iss": issuer, "aud": []string{audience}, "sub": "load",
			"iat": now, "nbf": now, "exp": now + 300, "jti": fmt.Sprint(i),
			"permissions": []string{"orders:read"}, "services": []string{"/api/orders"}, "origins": []string{origin}})
		signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims)
		sum := sha256.Sum256([]byte(signing))
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			return nil, err
		}
		if s.Cmp(half) > 0 {
			s.Sub(key.Params().N, s)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		toks = append(toks, signing+"."+base64.RawURLEncoding.EncodeToString(sig))
	}
	return toks, nil
}

// serveBare answers every request as a jwt-auth allow would (200 with the
// two identity headers, no body) for d: the figure for bare net/http on
// the same machine. Loopback addresses only.
func serveBare(addr string, d time.Duration) error {
	if _, err := loopbackBase("http://" + addr); err != nil {
		return errors.New("-serve-bare: " + err.Error())
	}
	if d <= 0 || d > maxDuration {
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-User-Id"] = []string{"load"}
		h["X-User-Permissions"] = []string{"orders:read"}
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
