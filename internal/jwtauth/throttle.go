package jwtauth

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterMap is a bounded set of token buckets keyed by username or source
// address. When full it first forgets buckets that have refilled (they are
// indistinguishable from new ones), then the least-drained one, so an
// attacker flooding new keys cannot evict the bucket of a key under attack.
type limiterMap struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	max   int
	every rate.Limit
	burst int
}

func newLimiterMap(burst int, interval time.Duration, max int) *limiterMap {
	return &limiterMap{m: map[string]*rate.Limiter{}, max: max, every: rate.Every(interval), burst: burst}
}

// allow takes one attempt from key's bucket; if none is left it says how
// long until the next one.
func (l *limiterMap) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= l.max {
			l.evict(now)
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.m[key] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *limiterMap) evict(now time.Time) {
	var fullest string
	most := math.Inf(-1)
	for k, lim := range l.m {
		t := lim.TokensAt(now)
		if t >= float64(l.burst) {
			delete(l.m, k)
			continue
		}
		if t > most {
			most, fullest = t, k
		}
	}
	if len(l.m) >= l.max {
		delete(l.m, fullest)
	}
}

// sourceAddr is the client address used for throttling and the audit log:
// the TrustedHops-th X-Forwarded-For entry from the right (what our own
// proxies appended; anything further left is client-supplied), else the
// TCP peer.
func sourceAddr(r *http.Request, trustedHops int) string {
	if trustedHops > 0 {
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for h := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
		if i := len(hops) - trustedHops; i >= 0 && i < len(hops) {
			if ip := net.ParseIP(hops[i]); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sourceBucket is the throttle key of a source address: IPv4 addresses
// alone, IPv6 addresses by their first v6Prefix bits (a /64 is one host's
// or one subnet's, and every address in it would otherwise have a bucket).
func sourceBucket(addr string, v6Prefix int) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() || a.Is4In6() {
		return addr
	}
	p, err := a.WithZone("").Prefix(v6Prefix)
	if err != nil {
		return addr
	}
	return p.String()
}

func (l *limiterMap) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
