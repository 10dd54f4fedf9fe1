package jwtauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// ttlCache is a small bounded map of verified results keyed by the SHA-256
// of the credential (the credential itself is never stored). Entries carry
// their own expiry; callers add any further validity test (key generation).
// When full, an arbitrary entry is dropped: Go's map iteration order is
// randomised, which is good enough eviction for a cache whose only job is
// to skip repeated signature checks.
type ttlCache[V any] struct {
	mu  sync.RWMutex
	m   map[[32]byte]ttlEntry[V]
	max int
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

// newTTLCache returns nil (a valid, always-missing cache) when max <= 0.
func newTTLCache[V any](max int) *ttlCache[V] {
	if max <= 0 {
		return nil
	}
	return &ttlCache[V]{m: make(map[[32]byte]ttlEntry[V], max), max: max}
}

func cacheKey(parts ...string) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *ttlCache[V]) get(k [32]byte, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k [32]byte, v V, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if _, exists := c.m[k]; !exists && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: expires}
	c.mu.Unlock()
}

func (c *ttlCache[V]) purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *ttlCache[V]) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
