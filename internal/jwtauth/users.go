package jwtauth

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// Access is the part of a users or clients entry that ends up in tokens.
type Access struct {
	Permissions []string `json:"permissions"`
	// Services are path prefixes, matched on segment boundaries.
	Services []string `json:"services"`
	// Origins are exact browser origins, e.g. https://app.example.com.
	Origins []string `json:"origins"`
}

// UserEntry is one user in the --users file. The camelCase spellings
// (passwordHash, oidcSubject) are accepted too: ztedge:authUsers uses them.
type UserEntry struct {
	Username string `json:"username"`
	// PasswordHash is a bcrypt hash ($2a$/$2b$/$2y$); empty disables the
	// password grant for this user (e.g. OIDC-only users).
	PasswordHash      string `json:"password_hash,omitempty"`
	PasswordHashCamel string `json:"passwordHash,omitempty"`
	// OIDCSubject maps an upstream ID token's sub to this user for token
	// exchange.
	OIDCSubject      string `json:"oidc_subject,omitempty"`
	OIDCSubjectCamel string `json:"oidcSubject,omitempty"`
	Access
}

// ClientEntry is one trusted client in --clients, matched by exact
// subject DN or, for certificates from the stack's own CA
// (ztedge:trustedClients), by common name.
type ClientEntry struct {
	// Subject is the certificate subject DN in RFC 2253 form, as printed by
	// `openssl x509 -noout -subject -nameopt RFC2253`, e.g.
	// "CN=payments,O=Example Corp".
	Subject string `json:"subject,omitempty"`
	// Name matches the subject's CN alone. Every CA in --client-ca is
	// trusted to issue it, so use it with a private CA only.
	Name string `json:"name,omitempty"`
	// ID becomes the token sub and X-User-ID (default: Name, else Subject).
	ID string `json:"id,omitempty"`
	Access
}

type usersFile struct {
	Users []UserEntry `json:"users"`
}

type clientsFile struct {
	Clients []ClientEntry `json:"clients"`
}

// userDB is the loaded --users file.
type userDB struct {
	byName map[string]*userRecord
	byOIDC map[string]*userRecord
	// dummyHash is compared against for unknown users so that a wrong
	// username costs as much time as a wrong password.
	dummyHash []byte
}

type userRecord struct {
	hash []byte
	id   Identity
}

// readStrict parses YAML or JSON (JSON is YAML) and rejects unknown keys,
// so a typo such as "service:" fails loudly instead of granting nothing.
// The entries may sit under listKey or be the whole document (a list).
func readStrict(file, flag, listKey string, into any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, file, err)
	}
	if t := bytes.TrimSpace(js); len(t) > 0 && t[0] == '[' {
		js = slices.Concat([]byte(`{"`+listKey+`":`), t, []byte("}"))
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return nil
}

// either merges two spellings of one field.
func either(a, b, name string) (string, error) {
	if a != "" && b != "" && a != b {
		return "", fmt.Errorf("%s is given twice with different values", name)
	}
	if a != "" {
		return a, nil
	}
	return b, nil
}

func loadUsers(file string) (*userDB, error) {
	var f usersFile
	if err := readStrict(file, "--users", "users", &f); err != nil {
		return nil, err
	}
	db := &userDB{byName: map[string]*userRecord{}, byOIDC: map[string]*userRecord{}}
	maxCost := bcrypt.MinCost
	for i, u := range f.Users {
		where := fmt.Sprintf("--users %s: user #%d (%q)", file, i+1, u.Username)
		if err := checkID(u.Username); err != nil {
			return nil, fmt.Errorf("%s: username %w", where, err)
		}
		if db.byName[u.Username] != nil {
			return nil, fmt.Errorf("%s: duplicate username", where)
		}
		acc, err := u.Access.normalise()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		rec := &userRecord{id: Identity{ID: u.Username, Permissions: acc.Permissions, Services: acc.Services, Origins: acc.Origins}}
		if u.PasswordHash, err = either(u.PasswordHash, u.PasswordHashCamel, "password_hash"); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if u.OIDCSubject, err = either(u.OIDCSubject, u.OIDCSubjectCamel, "oidc_subject"); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if u.PasswordHash != "" {
			cost, err := bcrypt.Cost([]byte(u.PasswordHash))
			if err != nil {
				return nil, fmt.Errorf("%s: password_hash is not a bcrypt hash: %w", where, err)
			}
			maxCost = max(maxCost, cost)
			rec.hash = []byte(u.PasswordHash)
		}
		if u.OIDCSubject != "" {
			if db.byOIDC[u.OIDCSubject] != nil {
				return nil, fmt.Errorf("%s: oidc_subject %q used twice", where, u.OIDCSubject)
			}
			db.byOIDC[u.OIDCSubject] = rec
		}
		db.byName[u.Username] = rec
	}
	var err error
	db.dummyHash, err = bcrypt.GenerateFromPassword([]byte("not-a-real-password"), maxCost)
	return db, err
}

// authenticate checks a username and password in (roughly) constant time
// whether or not the user exists; the caller learns only yes or no.
func (db *userDB) authenticate(username, password string) (*Identity, bool) {
	rec := db.byName[username]
	hash := db.dummyHash
	if rec != nil && rec.hash != nil {
		hash = rec.hash
	}
	// bcrypt refuses passwords over 72 bytes; compare anyway to keep timing.
	pw := password
	tooLong := len(pw) > 72
	if tooLong {
		pw = pw[:72]
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil
	if !ok || tooLong || rec == nil || rec.hash == nil {
		return nil, false
	}
	return &rec.id, true
}

// clientDB is the loaded --clients file.
type clientDB struct {
	bySubject map[string]*Identity
	byCN      map[string]*Identity
}

// lookup prefers an exact subject match over a CN match.
func (c *clientDB) lookup(cert *x509.Certificate, subject string) *Identity {
	if id := c.bySubject[subject]; id != nil {
		return id
	}
	return c.byCN[cert.Subject.CommonName]
}

func loadClients(file string) (*clientDB, error) {
	var f clientsFile
	if err := readStrict(file, "--clients", "clients", &f); err != nil {
		return nil, err
	}
	db := &clientDB{bySubject: map[string]*Identity{}, byCN: map[string]*Identity{}}
	for i, c := range f.Clients {
		where := fmt.Sprintf("--clients %s: client #%d (%q)", file, i+1, c.Subject+c.Name)
		table, key := db.bySubject, c.Subject
		switch {
		case (c.Subject == "") == (c.Name == ""):
			return nil, fmt.Errorf("%s: give exactly one of subject or name", where)
		case c.Name != "":
			table, key = db.byCN, c.Name
		}
		if strings.TrimSpace(key) == "" {
			return nil, fmt.Errorf("%s: subject or name is blank", where)
		}
		if table[key] != nil {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		id := c.ID
		if id == "" {
			id = key
		}
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("%s: id %w", where, err)
		}
		acc, err := c.Access.normalise()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		table[key] = &Identity{ID: id, Permissions: acc.Permissions, Services: acc.Services, Origins: acc.Origins}
	}
	return db, nil
}

// checkID keeps identities printable: they go into a response header.
func checkID(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q has a control character", s)
		}
	}
	return nil
}

// normalise validates and cleans an Access so tokens carry only
// well-formed values: permissions without commas (the header joins them
// with commas), services as clean absolute paths, origins as
// scheme://host[:port].
func (a Access) normalise() (Access, error) {
	out := Access{Permissions: []string{}, Services: []string{}, Origins: []string{}}
	for _, p := range a.Permissions {
		if p == "" || strings.ContainsAny(p, ", \t\r\n") {
			return out, fmt.Errorf("permission %q must be non-empty without commas or spaces", p)
		}
		out.Permissions = append(out.Permissions, p)
	}
	for _, s := range a.Services {
		if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "\\?#\x00") {
			return out, fmt.Errorf("service %q must be an absolute path prefix such as /api/orders", s)
		}
		out.Services = append(out.Services, path.Clean(s))
	}
	for _, o := range a.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return out, fmt.Errorf("origin %q must look like https://host[:port]", o)
		}
		out.Origins = append(out.Origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}
