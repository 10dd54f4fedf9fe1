package jwtauth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// hashGate bounds password hashing. bcrypt at cost 12 takes ~0.25 s of a
// core and runs in the process that answers checks, so an unbounded login
// flood starves checks past Envoy's ext_authz timeout. The gate lets about
// one hash per CPU run, queues a few more, refuses the rest at once (503 +
// Retry-After: cheap for us, honest for the client) and caps the replica's
// attempts per second whatever the number of sources.
type hashGate struct {
	slots    *semaphore.Weighted
	queued   atomic.Int64
	maxQueue int64
	maxWait  time.Duration
	attempts *rate.Limiter
}

// errHashBusy: no hashing capacity now; the client should retry later.
var errHashBusy = errors.New("password hashing at capacity")

func newHashGate(t ThrottleConfig) *hashGate {
	return &hashGate{
		slots:    semaphore.NewWeighted(int64(t.MaxHashes)),
		maxQueue: int64(t.MaxHashQueue),
		maxWait:  t.MaxHashWait,
		attempts: rate.NewLimiter(rate.Limit(t.MaxLoginRate), t.MaxLoginRate),
	}
}

// run calls hash when a slot is free, or returns errHashBusy or the
// context's error without calling it. The request's context is checked
// after the wait, so a client that gave up costs no hash.
func (g *hashGate) run(ctx context.Context, hash func()) error {
	if !g.attempts.Allow() {
		return errHashBusy
	}
	if !g.slots.TryAcquire(1) {
		if err := g.wait(ctx); err != nil {
			return err
		}
	}
	defer g.slots.Release(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	hash()
	return nil
}

// wait queues for a slot, bounded in places and in time.
func (g *hashGate) wait(ctx context.Context) error {
	if g.queued.Add(1) > g.maxQueue {
		g.queued.Add(-1)
		return errHashBusy
	}
	defer g.queued.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, g.maxWait)
	defer cancel()
	if err := g.slots.Acquire(ctx, 1); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return errHashBusy
		}
		return err
	}
	return nil
}
