package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

type usersFile struct {
	Users []UserEntry `json:"users"`
}

// userDB is the loaded --users file. Every password hash has the same
// bcrypt cost (sameCost), and so has dummyHash.
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
// source names the document in errors ("--users <file>", or the stack
// setting it came from).
func readStrict(data []byte, source, listKey string, into any) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if t := bytes.TrimSpace(js); len(t) > 0 && t[0] == '[' {
		js = slices.Concat([]byte(`{"`+listKey+`":`), t, []byte("}"))
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return nil
}

// readFile reads a flag's file; the source in later errors is
// "<flag> <file>".
func readFile(flag, file string) ([]byte, string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", flag, err)
	}
	return data, flag + " " + file, nil
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
	data, source, err := readFile("--users", file)
	if err != nil {
		return nil, err
	}
	db, maxCost, err := parseUsers(data, source)
	if err != nil {
		return nil, err
	}
	db.dummyHash, err = bcrypt.GenerateFromPassword([]byte("not-a-real-password"), maxCost)
	return db, err
}

// ValidateUsers checks a users document as jwt-auth would load it, so a
// deployment can refuse a bad one before any pod crash-loops on it.
func ValidateUsers(data []byte, source string) error {
	_, _, err := parseUsers(data, source)
	return err
}

// parseUsers builds the user table and reports the highest bcrypt cost.
func parseUsers(data []byte, source string) (*userDB, int, error) {
	var f usersFile
	if err := readStrict(data, source, "users", &f); err != nil {
		return nil, 0, err
	}
	db := &userDB{byName: map[string]*userRecord{}, byOIDC: map[string]*userRecord{}}
	maxCost := bcrypt.MinCost
	costs := map[int][]string{} // bcrypt cost -> users hashed at it
	for i, u := range f.Users {
		where := fmt.Sprintf("%s: user #%d (%q)", source, i+1, clip(u.Username, 64))
		rec, cost, err := u.record()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", where, err)
		}
		if db.byName[u.Username] != nil {
			return nil, 0, fmt.Errorf("%s: duplicate username", where)
		}
		if sub := u.oidcSubject(); sub != "" {
			if db.byOIDC[sub] != nil {
				return nil, 0, fmt.Errorf("%s: oidc_subject %q used twice", where, sub)
			}
			db.byOIDC[sub] = rec
		}
		if rec.hash != nil {
			costs[cost] = append(costs[cost], clip(u.Username, 64))
		}
		maxCost = max(maxCost, cost)
		db.byName[u.Username] = rec
	}
	if err := sameCost(costs, maxCost); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", source, err)
	}
	return db, maxCost, nil
}

// sameCost refuses users hashed at different bcrypt costs: a wrong password
// for a cheap user answers faster than one for a dear user or an unknown
// user (compared against a dummy hash), which tells which usernames exist.
func sameCost(costs map[int][]string, maxCost int) error {
	if len(costs) <= 1 {
		return nil
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(costs)) {
		parts = append(parts, fmt.Sprintf("cost %d: %s", c, strings.Join(costs[c], ", ")))
	}
	return fmt.Errorf("password hashes use different bcrypt costs (%s); a wrong password would answer faster for some users than for others or for unknown users, which tells which usernames exist. Re-hash every password at one cost, e.g. printf '%%s\\n' \"$PW\" | jwt-auth hash-password -cost %d",
		strings.Join(parts, "; "), maxCost)
}

func (u *UserEntry) oidcSubject() string {
	if u.OIDCSubject != "" {
		return u.OIDCSubject
	}
	return u.OIDCSubjectCamel
}

// record validates one entry; cost is its bcrypt cost (MinCost if none).
func (u *UserEntry) record() (*userRecord, int, error) {
	if err := checkID(u.Username); err != nil {
		return nil, 0, fmt.Errorf("username %w", err)
	}
	if len(u.Username) > MaxUsernameBytes {
		return nil, 0, fmt.Errorf("username is longer than %d bytes", MaxUsernameBytes)
	}
	acc, err := u.Access.normalise()
	if err != nil {
		return nil, 0, err
	}
	rec := &userRecord{id: Identity{ID: u.Username, Permissions: acc.Permissions, Services: acc.Services, Origins: acc.Origins}}
	hash, err := either(u.PasswordHash, u.PasswordHashCamel, "password_hash")
	if err != nil {
		return nil, 0, err
	}
	if _, err := either(u.OIDCSubject, u.OIDCSubjectCamel, "oidc_subject"); err != nil {
		return nil, 0, err
	}
	cost := bcrypt.MinCost
	if hash != "" {
		if cost, err = bcrypt.Cost([]byte(hash)); err != nil {
			return nil, 0, fmt.Errorf("password_hash is not a bcrypt hash (make one with `jwt-auth hash-password`): %w", err)
		}
		rec.hash = []byte(hash)
	}
	return rec, cost, nil
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
