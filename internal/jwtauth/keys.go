package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	jose "github.com/go-jose/go-jose/v4"
)

// kidPattern keeps kids safe to put in a JWT header, a log line and a file name.
var kidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// KeySet is an immutable snapshot of the signing-key directory. A new
// snapshot replaces the old one atomically; the pointer doubles as the
// generation for the verified-token cache.
type KeySet struct {
	verify      map[string]*ecdsa.PublicKey
	kids        []string // sorted
	signKID     string   // ActiveKIDFile's kid, else the lexically greatest
	signKey     *ecdsa.PrivateKey
	jwks        []byte
	fingerprint [32]byte
}

// KIDs returns the key ids, sorted.
func (ks *KeySet) KIDs() []string { return append([]string(nil), ks.kids...) }

// SigningKID is the kid that signs new tokens ("" when the set is empty).
func (ks *KeySet) SigningKID() string { return ks.signKID }

// ParseSigningKeyPEM reads one ECDSA P-256 private key: SEC1 "EC PRIVATE
// KEY" (what pulumi-tls and openssl ecparam write) or PKCS#8 "PRIVATE KEY".
// An "EC PARAMETERS" block before it is skipped.
func ParseSigningKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	var key *ecdsa.PrivateKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var k any
		var err error
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			return nil, fmt.Errorf("unexpected PEM block %q (want EC PRIVATE KEY or PRIVATE KEY)", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		if key != nil {
			return nil, errors.New("more than one private key in file")
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want an ECDSA P-256 key", k)
		}
		if ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key is on curve %s, want P-256", ec.Curve.Params().Name)
		}
		key = ec
	}
	if key == nil {
		return nil, errors.New("no PEM private key found")
	}
	return key, nil
}

// ActiveKIDFile, next to the <kid>.pem files, names the one kid that signs.
// Every other key only verifies, which is what makes rotation safe across
// replicas: a new key is first published (in the directory, the JWKS and
// every replica's verify set) while the old one still signs, and only a
// later change makes it sign; the old key then stays as a verifier until
// the tokens it signed have expired. Without the file the lexically
// greatest kid signs (a plain directory of keys).
const ActiveKIDFile = "active-kid"

// LoadKeyDir reads every <kid>.pem in dir. Dotfiles and dot-directories
// are skipped: a Kubernetes Secret mount holds "..data" and
// "..<timestamp>" entries next to the <kid>.pem symlinks, which are
// followed. Any bad key fails the whole load, so a half-broken directory
// never silently drops a key.
func LoadKeyDir(dir string) (*KeySet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	ks := &KeySet{verify: map[string]*ecdsa.PublicKey{}}
	privs := map[string]*ecdsa.PrivateKey{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".pem") {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p) // follows the Secret-mount symlink
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		kid := strings.TrimSuffix(name, ".pem")
		if !kidPattern.MatchString(kid) {
			return nil, fmt.Errorf("signing key %s: kid %q must match %s", p, kid, kidPattern)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", p, err)
		}
		priv, err := ParseSigningKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", p, err)
		}
		privs[kid] = priv
		ks.verify[kid] = &priv.PublicKey
		ks.kids = append(ks.kids, kid)
	}
	sort.Strings(ks.kids)
	h := sha256.New()
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, kid := range ks.kids {
		der, err := x509.MarshalPKIXPublicKey(ks.verify[kid])
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", kid, err)
		}
		fmt.Fprintf(h, "%s\x00%x\x00", kid, der)
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: ks.verify[kid], KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	if ks.signKID, err = activeKID(dir, ks.kids); err != nil {
		return nil, err
	}
	ks.signKey = privs[ks.signKID]
	fmt.Fprintf(h, "active\x00%s", ks.signKID)
	copy(ks.fingerprint[:], h.Sum(nil))
	if ks.jwks, err = json.Marshal(jwks); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return ks, nil
}

// activeKID reads ActiveKIDFile; it must name a key of the directory.
func activeKID(dir string, kids []string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, ActiveKIDFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(kids) == 0 {
			return "", nil
		}
		return kids[len(kids)-1], nil
	case err != nil:
		return "", fmt.Errorf("signing keys: %w", err)
	}
	kid := strings.TrimSpace(string(data))
	if !slices.Contains(kids, kid) {
		return "", fmt.Errorf("signing keys: %s names %q, but there is no %s.pem in %s", ActiveKIDFile, kid, kid, dir)
	}
	return kid, nil
}

// keyManager holds the current KeySet and swaps it on reload.
type keyManager struct {
	dir    string
	cur    atomic.Pointer[KeySet]
	mu     sync.Mutex // serialises reloads
	onSwap func(*KeySet)
}

func newKeyManager(dir string) (*keyManager, error) {
	ks, err := LoadKeyDir(dir)
	if err != nil {
		return nil, err
	}
	m := &keyManager{dir: dir}
	m.cur.Store(ks)
	return m, nil
}

func (m *keyManager) current() *KeySet { return m.cur.Load() }

// reload re-reads the directory. The snapshot is replaced only when the
// keys changed, so cached verifications survive no-op polls. On error the
// old keys stay in force.
func (m *keyManager) reload() (changed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks, err := LoadKeyDir(m.dir)
	if err != nil {
		return false, err
	}
	if old := m.cur.Load(); old != nil && bytes.Equal(old.fingerprint[:], ks.fingerprint[:]) {
		return false, nil
	}
	m.cur.Store(ks)
	if m.onSwap != nil {
		m.onSwap(ks)
	}
	return true, nil
}
