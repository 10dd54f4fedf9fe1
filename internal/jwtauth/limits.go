package jwtauth

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Memory bounds. Without them memory grows with the attacker's
// concurrency: a connection reading 60 KiB of headers holds about three
// copies of them (the bufio reader's growth, the line buffers, the header
// map), and nothing limited the number of connections. jwt-auth derives
// its connection and request limits from --memory-limit so that the sum
// stays under it whatever the number of clients: connections beyond the
// limit wait in the kernel's accept queue, requests beyond the limit get
// a 503 after a short wait (/token; checks are bounded by connections).
const (
	// MaxHeaderBytes bounds one request's header block (net/http adds
	// 4 KiB of slack); a forwarded certificate chain is a few KiB.
	MaxHeaderBytes = 64 << 10
	// DefaultMemoryLimit is the pod's limit in components/auth.go.
	DefaultMemoryLimit = 256 << 20
	// MinMemoryLimit leaves room for the base and a few hundred clients.
	MinMemoryLimit = 96 << 20
	// baseBytes is what jwt-auth holds with no client: runtime, keys,
	// the verification caches and throttle maps at their bounds.
	baseBytes = 48 << 20
	// connBytes is what one connection sending a full header block holds:
	// about three copies of the block plus buffers and stack (checked
	// against peak RSS by SCENARIO=headers in cmd/loadgen/load-auth.sh);
	// requestBytes the same for a /token body (64 KiB form, parsed).
	connBytes    = 3*(MaxHeaderBytes+4<<10) + 32<<10
	requestBytes = 4 * maxFormBytes
	// budgetShare of the limit may be spent on clients: GOMEMLIMIT is 90 %
	// of it, and the collector must not work at the edge of that.
	budgetShare = 0.75
	// requestWait is how long a request waits for a slot before its 503.
	requestWait = 100 * time.Millisecond
)

// Limits are the connection and request bounds derived from a memory limit.
type Limits struct {
	MaxConnections int // accepted connections at once
	MaxRequests    int // /token requests being handled at once
}

// LimitsFor splits the client budget of limit bytes: two thirds to
// connections (header blocks), one third to requests in flight (bodies).
func LimitsFor(limit int64) Limits {
	budget := int64(float64(limit)*budgetShare) - baseBytes
	return Limits{
		MaxConnections: max(1, int(budget*2/3/connBytes)),
		MaxRequests:    max(1, int(budget/3/requestBytes)),
	}
}

// ParseBytes reads a memory size: plain bytes (what the downward API's
// limits.memory gives) or a number with Ki, Mi or Gi.
func ParseBytes(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size such as 256Mi or 268435456", s)
	}
	return n * mult, nil
}

// requestGate bounds requests in flight; the fast path is one channel send.
type requestGate chan struct{}

func (g requestGate) enter() bool {
	select {
	case g <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(requestWait)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (g requestGate) leave() { <-g }

// gated answers 503 (retry in 1 s) when no request slot frees up in time.
// It guards /token, whose requests read a body of up to 64 KiB; a check
// reads none and is one per connection (HTTP/1.1), so the connection
// limit bounds checks, and a login flood cannot take their slots.
func (s *Server) gated(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	if !s.gate.enter() {
		s.metrics.refused(reasonOverloaded)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Cache-Control", "no-store")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "error_description", "too many requests in progress, retry later")
		return
	}
	defer s.gate.leave()
	next(w, r)
}

// limitListener holds connections beyond the limit in the accept queue.
func (s *Server) limitListener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, s.limits.MaxConnections)
}
