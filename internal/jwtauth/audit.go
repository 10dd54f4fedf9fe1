package jwtauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
)

// One JSON line per decision. Never logged: tokens, passwords, keys,
// Authorization or certificate headers.

var (
	ridPrefix  = newRIDPrefix()
	ridCounter atomic.Uint64
)

func newRIDPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// requestID is Envoy's x-request-id when it is sane (so our line joins the
// edge's access log), else a locally unique id.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	return ridPrefix + strconv.FormatUint(ridCounter.Add(1), 10)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Server) auditCheck(r *http.Request, d *decision) {
	result, level := "allow", slog.LevelInfo
	if d.status != http.StatusOK {
		result, level = "deny", slog.LevelWarn
	}
	subject, certSubject := "", d.subject
	if d.p != nil {
		subject = d.p.id
		if d.p.certSubject != "" {
			certSubject = d.p.certSubject
		}
	}
	p := d.path
	if p == "" {
		// Not a path we accepted: record what was sent, escaped as it came
		// (decoded, invalid UTF-8 would show as U+FFFD, not the attempt).
		p = clip(r.URL.EscapedPath(), 512)
	}
	s.log.LogAttrs(context.Background(), level, "check",
		slog.String("request_id", requestID(r)),
		slog.String("decision", result),
		slog.String("reason", d.reason),
		slog.Int("status", d.status),
		slog.String("subject", subject),
		slog.String("client_cert_subject", clip(certSubject, 512)),
		slog.String("method", clip(r.Method, 16)),
		slog.String("path", p),
		slog.String("source", sourceAddr(r, s.cfg.TrustedHops)),
	)
}

func (s *Server) auditGrant(r *http.Request, out *grantOutcome) {
	result, level, status := "issued", slog.LevelInfo, http.StatusOK
	if out.status != 0 {
		result, level, status = "refused", slog.LevelWarn, out.status
	}
	subject := ""
	if out.id != nil && out.status == 0 {
		subject = out.id.ID
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestID(r)),
		slog.String("decision", result),
		slog.String("reason", out.reason),
		slog.Int("status", status),
		slog.String("grant", out.grant),
		slog.String("subject", subject),
		slog.String("client_cert_subject", clip(out.certSubject, 512)),
		slog.String("path", "/token"),
		slog.String("source", sourceAddr(r, s.cfg.TrustedHops)),
	}
	if out.grant == GrantPassword {
		// The attempted name helps spot an account under attack.
		attrs = append(attrs, slog.String("username", clip(r.PostForm.Get("username"), 64)))
	}
	s.log.LogAttrs(context.Background(), level, "token", attrs...)
}
