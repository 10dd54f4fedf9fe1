package jwtauth

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestLoginFloodIsRefusedNotQueued: a burst of password logins from many
// sources (each inside its own throttle bucket) at production bcrypt cost
// gets 503 + Retry-After beyond the hashing slots and queue, instead of
// every request queueing for the CPU that checks need.
func TestLoginFloodIsRefusedNotQueued(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), DefaultBcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	users := writeFile(t, e.dir, "cost12.yaml", fmt.Sprintf("users: [{username: carol, password_hash: %q, services: [/]}]\n", hash))
	if e.srv.users, err = loadUsers(users); err != nil { // unknown users now cost a cost-12 compare too
		t.Fatal(err)
	}
	n := 3*runtime.GOMAXPROCS(0) + 8 // more than the slots and the queue together
	statuses := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xff := map[string]string{"X-Forwarded-For": fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}
			st, m, hdr := e.tokenReq(pwForm(fmt.Sprintf("flood%d", i), "guess"), xff)
			statuses <- fmt.Sprintf("%d %v retry-after=%q", st, m["error"], hdr.Get("Retry-After"))
		}()
	}
	wg.Wait()
	close(statuses)
	busy := 0
	for s := range statuses {
		switch s {
		case `503 temporarily_unavailable retry-after="1"`:
			busy++
		case `400 invalid_grant retry-after=""`:
		default:
			t.Errorf("unexpected answer %s", s)
		}
	}
	if busy == 0 {
		t.Fatalf("%d concurrent cost-%d logins: none refused with 503; every one queued for a hash", n, DefaultBcryptCost)
	}
}

func testGate(maxHashes, queue, rate int) *hashGate {
	return newHashGate(ThrottleConfig{MaxHashes: maxHashes, MaxHashQueue: queue, MaxHashWait: time.Second, MaxLoginRate: rate})
}

// TestHashGateBounds: one slot, one queue place; the third caller is
// refused at once; a cancelled caller never hashes; the per-replica rate
// caps attempts whatever the slots.
func TestHashGateBounds(t *testing.T) {
	g := testGate(1, 1, 100)
	hold, started := make(chan struct{}), make(chan struct{})
	go func() { _ = g.run(context.Background(), func() { close(started); <-hold }) }()
	<-started
	queued := make(chan error)
	go func() { queued <- g.run(context.Background(), func() {}) }()
	for g.queued.Load() != 1 {
		runtime.Gosched()
	}
	if err := g.run(context.Background(), func() { t.Error("hashed past the queue") }); err != errHashBusy {
		t.Fatalf("third caller: %v, want errHashBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	close(hold)
	if err := <-queued; err != nil {
		t.Fatalf("queued caller: %v", err)
	}
	if err := g.run(ctx, func() { t.Error("hashed for a cancelled request") }); err == nil {
		t.Fatal("cancelled request was not refused")
	}

	g = testGate(4, 4, 3)
	for i := range 3 {
		if err := g.run(context.Background(), func() {}); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := g.run(context.Background(), func() { t.Error("hashed past the rate") }); err != errHashBusy {
		t.Fatalf("4th attempt in the same second: %v", err)
	}
}

// TestLongUsernamesKeepNoState: names over MaxUsernameBytes are refused
// before a throttle bucket is made for them (1,500 × 60 KB names used to
// keep ~90 MB), and the per-user map stays within MaxEntries however many
// names an attacker tries.
func TestLongUsernamesKeepNoState(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Throttle = ThrottleConfig{MaxEntries: 50} })
	long := strings.Repeat("x", 60<<10)
	for i := range 20 {
		xff := map[string]string{"X-Forwarded-For": fmt.Sprintf("10.2.0.%d", i+1)}
		st, m, _ := e.tokenReq(pwForm(fmt.Sprint(i)+long, "pw"), xff)
		if st != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Fatalf("60 KB username: %d %v", st, m)
		}
	}
	if n := e.srv.userLimits.len(); n != 0 {
		t.Fatalf("%d throttle entries kept for refused usernames", n)
	}
	for i := range 200 {
		xff := map[string]string{"X-Forwarded-For": fmt.Sprintf("10.3.%d.%d", i/200, i%200+1)}
		e.tokenReq(pwForm(fmt.Sprintf("%0256d", i), "pw"), xff)
	}
	if n := e.srv.userLimits.len(); n > 50 {
		t.Fatalf("per-user map grew to %d entries, cap 50", n)
	}
}
