package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ztedge/ztedge/internal/jwtauth"
)

func runErr(t *testing.T, args ...string) string {
	t.Helper()
	err := run(args, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil {
		t.Fatalf("%v: no error", args)
	}
	return err.Error()
}

func TestTokenTTLOutOfRangeRefusesToStart(t *testing.T) {
	base := []string{"--signing-keys", t.TempDir(), "--issuer", "i", "--audience", "a"}
	for _, ttl := range []string{"4m59s", "16m", "1h"} {
		msg := runErr(t, append(base, "--token-ttl", ttl)...)
		if !strings.Contains(msg, "--token-ttl") || !strings.Contains(msg, "5m0s to 15m0s") {
			t.Errorf("%s: %q", ttl, msg)
		}
	}
}

func TestEnvironmentFallbackAndPrecedence(t *testing.T) {
	t.Setenv("JWT_AUTH_TOKEN_TTL", "1h")
	t.Setenv("JWT_AUTH_ISSUER", "i")
	t.Setenv("JWT_AUTH_AUDIENCE", "a")
	t.Setenv("JWT_AUTH_SIGNING_KEYS", "/nonexistent/keys-from-env")
	// The environment supplies --token-ttl...
	if msg := runErr(t); !strings.Contains(msg, "--token-ttl 1h0m0s") {
		t.Fatalf("env TTL not used: %q", msg)
	}
	// ...but a flag wins; the next problem is the env's key directory.
	msg := runErr(t, "--token-ttl", "10m")
	if strings.Contains(msg, "token-ttl") || !strings.Contains(msg, "/nonexistent/keys-from-env") {
		t.Fatalf("flag did not win over env: %q", msg)
	}
	t.Setenv("JWT_AUTH_LISTEN", "not a duration but fine")
	t.Setenv("JWT_AUTH_LOGIN_USER_BURST", "many")
	if msg := runErr(t, "--token-ttl", "10m"); !strings.Contains(msg, "JWT_AUTH_LOGIN_USER_BURST") {
		t.Fatalf("bad env value not named: %q", msg)
	}
}

func TestRequiredFlags(t *testing.T) {
	if msg := runErr(t, "--issuer", "i", "--audience", "a"); !strings.Contains(msg, "--signing-keys") {
		t.Errorf("%q", msg)
	}
	if msg := runErr(t, "--signing-keys", t.TempDir(), "--audience", "a"); !strings.Contains(msg, "--issuer") {
		t.Errorf("%q", msg)
	}
	if msg := runErr(t, "--signing-keys", t.TempDir(), "--issuer", "i", "--audience", "a", "--clients", "x.yaml"); !strings.Contains(msg, "--client-ca") {
		t.Errorf("%q", msg)
	}
}

func TestHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"hash-password", "-cost", "4"}, strings.NewReader("s3cret pass\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret pass")) != nil {
		t.Fatalf("hash %q does not match", h)
	}
	// The default cost is the production one.
	out.Reset()
	if err := run([]string{"hash-password"}, strings.NewReader("x"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost(bytes.TrimSpace(out.Bytes())); err != nil || c < 12 {
		t.Fatalf("default cost %d %v", c, err)
	}
	if err := run([]string{"hash-password"}, strings.NewReader("\n"), io.Discard, io.Discard); err == nil {
		t.Fatal("empty password hashed")
	}
}

func TestGenKey(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"gen-key"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "-----BEGIN EC PRIVATE KEY-----") {
		t.Fatalf("%q", out.String())
	}
	if _, err := jwtauth.ParseSigningKeyPEM(out.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsRelaySubcommand: the Ambassador pod's sidecar runs `jwt-auth metrics-relay`; an
// unknown flag is an error, not a jwt-auth server started in its place.
func TestMetricsRelaySubcommand(t *testing.T) {
	if err := run([]string{"metrics-relay", "-h"}, strings.NewReader(""), io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("metrics-relay -h: %v, want flag.ErrHelp", err)
	}
	if err := run([]string{"metrics-relay", "--no-such-flag"}, strings.NewReader(""), io.Discard, io.Discard); err == nil {
		t.Error("metrics-relay --no-such-flag: no error")
	}
}
