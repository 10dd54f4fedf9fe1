package jwtauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// ClientEntry is one trusted client in --clients, matched by exact
// subject DN or, for certificates from the stack's own CA
// (ztedge:trustedClients), by common name plus the pinned fingerprints.
type ClientEntry struct {
	// Subject is the certificate subject DN in RFC 2253 form, as printed by
	// `openssl x509 -noout -subject -nameopt RFC2253`, e.g.
	// "CN=payments,O=Example Corp".
	Subject string `json:"subject,omitempty"`
	// Name matches the subject's CN alone. Every CA in --client-ca is
	// trusted to issue it, so use it with a private CA only, and only with
	// Fingerprints.
	Name string `json:"name,omitempty"`
	// Fingerprints pin the certificates the client holds now: SHA-256 of
	// the DER, hex (colons and case ignored), as `openssl x509 -noout
	// -fingerprint -sha256` prints it. When set, any other certificate
	// with the same subject is refused, so issuing a new one revokes the
	// old at once. Required with Name.
	Fingerprints []string `json:"fingerprints,omitempty"`
	// ID becomes the token sub and X-User-ID (default: Name, else Subject).
	ID string `json:"id,omitempty"`
	Access
}

type clientsFile struct {
	Clients []ClientEntry `json:"clients"`
}

// clientDB is the loaded --clients file.
type clientDB struct {
	bySubject map[string]*clientRecord
	byCN      map[string]*clientRecord
}

type clientRecord struct {
	id   Identity
	pins map[[sha256.Size]byte]bool // empty: any certificate with the subject
}

// lookup prefers an exact subject match over a CN match. pinned is false
// when the entry pins certificates and this is not one of them.
func (c *clientDB) lookup(cert *x509.Certificate, subject string) (id *Identity, pinned bool) {
	rec := c.bySubject[subject]
	if rec == nil {
		rec = c.byCN[cert.Subject.CommonName]
	}
	if rec == nil {
		return nil, false
	}
	return &rec.id, len(rec.pins) == 0 || rec.pins[sha256.Sum256(cert.Raw)]
}

// CertFingerprint is the pin of a certificate: SHA-256 of its DER, hex.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func loadClients(file string) (*clientDB, error) {
	data, source, err := readFile("--clients", file)
	if err != nil {
		return nil, err
	}
	return parseClients(data, source)
}

// ValidateClients checks a clients document as jwt-auth would load it.
func ValidateClients(data []byte, source string) error {
	_, err := parseClients(data, source)
	return err
}

func parseClients(data []byte, source string) (*clientDB, error) {
	var f clientsFile
	if err := readStrict(data, source, "clients", &f); err != nil {
		return nil, err
	}
	db := &clientDB{bySubject: map[string]*clientRecord{}, byCN: map[string]*clientRecord{}}
	for i, c := range f.Clients {
		where := fmt.Sprintf("%s: client #%d (%q)", source, i+1, clip(c.Subject+c.Name, 128))
		table, key := db.bySubject, c.Subject
		switch {
		case (c.Subject == "") == (c.Name == ""):
			return nil, fmt.Errorf("%s: give exactly one of subject or name", where)
		case c.Name != "":
			table, key = db.byCN, c.Name
			if len(c.Fingerprints) == 0 {
				return nil, fmt.Errorf("%s: a name entry needs fingerprints (SHA-256 of each current certificate): a CN alone would admit every certificate ever issued for it", where)
			}
		}
		if strings.TrimSpace(key) == "" {
			return nil, fmt.Errorf("%s: subject or name is blank", where)
		}
		if table[key] != nil {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		rec, err := c.record(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		table[key] = rec
	}
	return db, nil
}

func (c *ClientEntry) record(key string) (*clientRecord, error) {
	id := c.ID
	if id == "" {
		id = key
	}
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("id %w", err)
	}
	acc, err := c.Access.normalise()
	if err != nil {
		return nil, err
	}
	rec := &clientRecord{
		id:   Identity{ID: id, Permissions: acc.Permissions, Services: acc.Services, Origins: acc.Origins},
		pins: map[[sha256.Size]byte]bool{},
	}
	for _, fp := range c.Fingerprints {
		b, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(fp, ":", "")))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", clip(fp, 100))
		}
		rec.pins[[sha256.Size]byte(b)] = true
	}
	return rec, nil
}
