package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Grant types accepted by POST /token.
const (
	GrantPassword      = "password"
	GrantClientCert    = "client_certificate"
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

	tokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeJWT     = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccess  = "urn:ietf:params:oauth:token-type:access_token"
	maxFormBytes     = 64 << 10
)

// grantOutcome is one /token attempt, for the response, log and metrics.
type grantOutcome struct {
	grant       string
	id          *Identity
	status      int    // error status; 0 on success
	code        string // OAuth error code
	desc        string // safe, generic description
	reason      string // audit/metric reason
	certSubject string
	retryAfter  time.Duration
}

func refuse(status int, code, desc, reason string) grantOutcome {
	return grantOutcome{status: status, code: code, desc: desc, reason: reason}
}

var (
	errBadForm = refuse(http.StatusBadRequest, "invalid_request",
		"POST an application/x-www-form-urlencoded body", "bad_request")
	errBadLogin = refuse(http.StatusBadRequest, "invalid_grant",
		"invalid username or password", "bad_credentials")
)

type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	var out grantOutcome
	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		out = refuse(http.StatusMethodNotAllowed, "invalid_request", "use POST", "bad_method")
	} else {
		out = s.grant(w, r)
	}
	if out.status == 0 {
		tok, ttl, err := s.mint(out.id)
		switch {
		case errors.Is(err, errNoSigningKey):
			out = refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "no signing key loaded", "no_signing_key")
		case errors.Is(err, errBadIdentity):
			out = refuse(http.StatusBadRequest, "invalid_grant", "identity cannot be put in a token", "bad_identity")
		case err != nil:
			out = refuse(http.StatusInternalServerError, "server_error", "could not sign token", "sign_error")
		default:
			resp := tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(ttl / time.Second)}
			if out.grant == GrantTokenExchange {
				resp.IssuedTokenType = tokenTypeAccess
			}
			writeJSON(w, http.StatusOK, resp)
			out.reason = "issued"
		}
	}
	if out.status != 0 {
		if out.retryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int(out.retryAfter.Seconds()+0.999)))
		}
		writeJSONError(w, out.status, out.code, "error_description", out.desc)
	}
	s.metrics.grantResult(out.grant, out.status == 0)
	if out.status != 0 {
		s.metrics.refused(out.reason)
	}
	s.metrics.observe(endpointToken, s.cfg.Now().Sub(start))
	s.auditGrant(r, &out)
}

// grant validates the form and runs the grant type's authentication.
func (s *Server) grant(w http.ResponseWriter, r *http.Request) grantOutcome {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return errBadForm
	}
	if err := r.ParseForm(); err != nil {
		return errBadForm
	}
	form := r.PostForm
	grant := form.Get("grant_type")
	now := s.cfg.Now()
	// Every grant spends from the source address bucket before any work.
	if ok, wait := s.ipLimits.allow(sourceBucket(sourceAddr(r, s.cfg.TrustedHops), s.cfg.Throttle.IPv6Prefix), now); !ok {
		s.metrics.throttle(throttleSource)
		return throttled(grant, wait)
	}
	var out grantOutcome
	switch {
	case grant == GrantPassword && s.users != nil:
		out = s.passwordGrant(r.Context(), form.Get("username"), form.Get("password"), now)
	case grant == GrantClientCert && s.certs != nil:
		out = s.clientCertGrant(r)
	case grant == GrantTokenExchange && s.oidc != nil:
		out = s.exchangeGrant(r, form.Get("subject_token"), form.Get("subject_token_type"))
	case grant == "":
		out = refuse(http.StatusBadRequest, "invalid_request", "grant_type is required", "bad_request")
	default:
		out = refuse(http.StatusBadRequest, "unsupported_grant_type", "grant_type not enabled", "unsupported_grant")
		grant = "other" // keep metric labels bounded
	}
	out.grant = grant
	return out
}

func throttled(grant string, wait time.Duration) grantOutcome {
	out := refuse(http.StatusTooManyRequests, "slow_down", "too many attempts, retry later", "throttled")
	out.retryAfter = wait
	switch grant {
	case GrantPassword, GrantClientCert, GrantTokenExchange:
		out.grant = grant
	default:
		out.grant = "other"
	}
	return out
}

func (s *Server) passwordGrant(ctx context.Context, username, password string, now time.Time) grantOutcome {
	if username == "" || password == "" {
		return refuse(http.StatusBadRequest, "invalid_request", "username and password are required", "bad_request")
	}
	if len(username) > MaxUsernameBytes {
		return refuse(http.StatusBadRequest, "invalid_request", "username too long", "bad_request")
	}
	if ok, wait := s.userLimits.allow(strings.ToLower(username), now); !ok {
		s.metrics.throttle(throttleUsername)
		return throttled(GrantPassword, wait)
	}
	var id *Identity
	ok := false
	err := s.hashes.run(ctx, func() { id, ok = s.users.authenticate(username, password) })
	switch {
	case errors.Is(err, errHashBusy):
		s.metrics.throttle(throttleBusy)
		out := refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "too many logins in progress, retry later", "busy")
		out.retryAfter = time.Second
		return out
	case err != nil: // the client went away; nobody reads the answer
		return refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "request cancelled", "cancelled")
	case !ok:
		return errBadLogin
	}
	return grantOutcome{id: id}
}

func (s *Server) clientCertGrant(r *http.Request) grantOutcome {
	p, subject, reason := s.certs.authenticate(r.Header)
	if p == nil {
		out := refuse(http.StatusBadRequest, "invalid_grant", "client certificate not accepted", reason)
		out.certSubject = subject
		return out
	}
	id := *p.ident // the token expires with the certificate
	id.NotAfter = p.notAfter
	return grantOutcome{id: &id, certSubject: subject}
}

func (s *Server) exchangeGrant(r *http.Request, subjectToken, tokenType string) grantOutcome {
	if subjectToken == "" {
		return refuse(http.StatusBadRequest, "invalid_request", "subject_token is required", "bad_request")
	}
	// RFC 8693 makes subject_token_type required; we tolerate its absence
	// but refuse types that are not an ID token.
	if tokenType != "" && tokenType != tokenTypeIDToken && tokenType != tokenTypeJWT {
		return refuse(http.StatusBadRequest, "invalid_request", "subject_token_type must be an id_token", "bad_request")
	}
	sub, err := s.oidc.verify(r.Context(), subjectToken)
	if err != nil {
		return refuse(http.StatusBadRequest, "invalid_grant", "subject_token not accepted", "bad_subject_token")
	}
	rec := s.users.byOIDC[sub]
	if rec == nil {
		return refuse(http.StatusBadRequest, "invalid_grant", "subject_token not accepted", "unknown_subject")
	}
	return grantOutcome{id: &rec.id}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError writes {"error": code, key: val}. Values are fixed
// strings chosen by us, never request content.
func writeJSONError(w http.ResponseWriter, status int, code, key, val string) {
	writeJSON(w, status, map[string]string{"error": code, key: val})
}
