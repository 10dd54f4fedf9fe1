package jwtauth

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestUsersFileFormats(t *testing.T) {
	dir := t.TempDir()
	h := lowCostHash(t, "pw")
	// ztedge:authUsers style: a bare JSON list with camelCase hash.
	jsonList := writeFile(t, dir, "users.json", `[{"username":"carol","passwordHash":"`+h+`",
		"permissions":["a"],"services":["/api/x/"],"origins":["https://X.example.com"]}]`)
	db, err := loadUsers(jsonList)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := db.authenticate("carol", "pw")
	if !ok || id.Services[0] != "/api/x" || id.Origins[0] != "https://x.example.com" {
		t.Fatalf("carol: %v %+v", ok, id)
	}
	if _, ok := db.authenticate("carol", "wrong"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := db.authenticate("nobody", "pw"); ok {
		t.Fatal("unknown user accepted")
	}

	bad := map[string]string{
		"typo field":       "users:\n  - username: a\n    service: [/x]\n",
		"relative service": "users:\n  - username: a\n    services: [api]\n",
		"origin with path": "users:\n  - username: a\n    origins: [https://a.example/x]\n",
		"origin scheme":    "users:\n  - username: a\n    origins: [ftp://a.example]\n",
		"comma permission": "users:\n  - username: a\n    permissions: ['a,b']\n",
		"duplicate user":   "users:\n  - username: a\n  - username: a\n",
		"no username":      "users:\n  - permissions: [a]\n",
		"not bcrypt":       "users:\n  - username: a\n    password_hash: md5:abc\n",
		"two spellings":    "users:\n  - username: a\n    password_hash: '" + h + "'\n    passwordHash: 'x'\n",
		"shared oidc sub":  "users:\n  - username: a\n    oidc_subject: s\n  - username: b\n    oidc_subject: s\n",
		"not YAML":         "users: [\n",
	}
	for name, content := range bad {
		if _, err := loadUsers(writeFile(t, dir, "bad.yaml", content)); err == nil || !strings.Contains(err.Error(), "--users") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestClientsFileFormats(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	plain := ca.issue(t, "billing", time.Time{}, time.Time{}, x509.ExtKeyUsageClientAuth)
	db, err := loadClients(writeFile(t, dir, "c.yaml", `
- name: billing
  fingerprints: ["`+CertFingerprint(plain.Raw)+`"]
  permissions: [bill]
  services: [/api/billing]
- subject: "CN=billing,O=Other"
  id: billing-special
  services: [/api/special]
`))
	if err != nil {
		t.Fatal(err)
	}
	if id, pinned := db.lookup(plain, plain.Subject.String()); id == nil || id.ID != "billing" || !pinned {
		t.Fatalf("CN match: %+v", id)
	}
	// An exact subject entry beats the CN entry.
	if id, _ := db.lookup(plain, "CN=billing,O=Other"); id == nil || id.ID != "billing-special" {
		t.Fatalf("subject match: %+v", id)
	}
	for name, content := range map[string]string{
		"both keys":       "clients:\n  - name: a\n    subject: CN=a\n",
		"neither":         "clients:\n  - id: a\n",
		"duplicate":       "clients:\n  - subject: CN=a\n  - subject: CN=a\n",
		"bad origin":      "clients:\n  - subject: CN=a\n    origins: [x]\n",
		"name w/o pins":   "clients:\n  - name: a\n",
		"bad fingerprint": "clients:\n  - name: a\n    fingerprints: [abc]\n",
	} {
		if _, err := loadClients(writeFile(t, dir, "bad.yaml", content)); err == nil || !strings.Contains(err.Error(), "--clients") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	base := Config{SigningKeysDir: "d", Issuer: "i", Audience: "a"}
	for name, mutate := range map[string]func(*Config){
		"ttl low":         func(c *Config) { c.TokenTTL = 4 * time.Minute },
		"ttl high":        func(c *Config) { c.TokenTTL = 16 * time.Minute },
		"no issuer":       func(c *Config) { c.Issuer = "" },
		"half oidc":       func(c *Config) { c.OIDCIssuer = "x" },
		"oidc w/o users":  func(c *Config) { c.OIDCIssuer, c.OIDCAudience, c.OIDCJWKSURL = "x", "y", "z" },
		"clients w/o ca":  func(c *Config) { c.ClientsFile = "c" },
		"bad cert mode":   func(c *Config) { c.ClientsFile, c.ClientCAFile, c.ClientCertHeaders = "c", "ca", "alb" },
		"no cert mode":    func(c *Config) { c.ClientsFile, c.ClientCAFile = "c", "ca" },
		"negative hops":   func(c *Config) { c.TrustedHops, c.TrustedHopsSet = -1, true },
		"zero user burst": func(c *Config) { c.Throttle.UserBurst = -1 },
	} {
		c := base
		mutate(&c)
		c.setDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := base
	c.setDefaults()
	if err := c.Validate(); err != nil || c.TokenTTL != DefaultTokenTTL || c.Listen != ":3000" || c.TrustedHops != 1 {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	if _, err := New(Config{SigningKeysDir: t.TempDir(), Issuer: "i", Audience: "a", TokenTTL: 20 * time.Minute}); err == nil ||
		!strings.Contains(err.Error(), "--token-ttl") {
		t.Fatalf("New with bad TTL: %v", err)
	}
}
