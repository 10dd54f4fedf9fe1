package jwtauth

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRotationAcrossReplicasRejectsNothing runs two jwt-auth instances,
// each with its own copy of the key Secret (as two pods see the kubelet
// update their volumes at different moments), and rotates the signing key
// by the runbook: publish the new key (next), make it sign (active, the
// old one retiring), drop the old one after the longest token it signed
// expired. Each step reaches one replica, traffic runs, then the other.
// Tokens minted all along by either replica are checked on both: not one
// may be refused.
func TestRotationAcrossReplicasRejectsNothing(t *testing.T) {
	a := newEnv(t, nil)
	dirB := t.TempDir()
	b := newEnv(t, func(c *Config) { c.SigningKeysDir = dirB })
	replicas := []*env{a, b}
	old := a.keys["2024-01"]
	newKey := writeKey(t, a.keyDir, "2025-01", false)
	if err := os.Remove(filepath.Join(a.keyDir, "2025-01.pem")); err != nil {
		t.Fatal(err)
	}
	// setKeys writes a replica's volume: the keys and the active kid.
	setKeys := func(e *env, active string, kids ...string) {
		t.Helper()
		for _, f := range []string{"2024-01.pem", "2025-01.pem", ActiveKIDFile} {
			_ = os.Remove(filepath.Join(e.srv.cfg.SigningKeysDir, f))
		}
		for _, kid := range kids {
			k := map[string]*ecdsa.PrivateKey{"2024-01": old, "2025-01": newKey}[kid]
			writePEMKey(t, e.srv.cfg.SigningKeysDir, kid, k)
		}
		writeFile(t, e.srv.cfg.SigningKeysDir, ActiveKIDFile, active+"\n")
		if err := e.srv.ReloadKeys(); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range replicas {
		setKeys(e, "2024-01", "2024-01")
	}

	var (
		pause   sync.RWMutex // held by the test while it moves the clocks
		stop    atomic.Bool
		checked atomic.Int64
		refused = make(chan string, 100)
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			pause.RLock()
			tok, _, err := replicas[i%2].srv.mint(&Identity{ID: "alice", Services: []string{"/"}})
			if err != nil {
				refused <- err.Error()
			}
			for _, e := range replicas {
				st, _, body := e.check("/x", bearer(tok))
				if st != 200 {
					select {
					case refused <- fmt.Sprintf("minted by replica %d, checked by %p: %d %s", i%2, e, st, body):
					default:
					}
				}
				checked.Add(1)
			}
			pause.RUnlock()
		}
	}()
	traffic := func() { // let some checks run between steps
		for n := checked.Load() + 20; checked.Load() < n && len(refused) == 0; {
			time.Sleep(time.Millisecond)
		}
	}
	traffic()
	for _, e := range replicas { // 1. publish 2025-01; 2024-01 still signs
		setKeys(e, "2024-01", "2024-01", "2025-01")
		traffic()
	}
	for _, e := range replicas { // 2. 2025-01 signs; 2024-01 retiring
		setKeys(e, "2025-01", "2024-01", "2025-01")
		traffic()
	}
	pause.Lock() // 3. a TTL later, 2024-01's tokens have expired
	for _, e := range replicas {
		e.clk.advance(DefaultTokenTTL + Leeway + time.Second)
	}
	pause.Unlock()
	for _, e := range replicas {
		setKeys(e, "2025-01", "2025-01")
		traffic()
	}
	stop.Store(true)
	wg.Wait()
	close(refused)
	for r := range refused {
		t.Error(r)
	}
	if a.srv.KeySet().SigningKID() != "2025-01" || len(a.srv.KeySet().KIDs()) != 1 {
		t.Fatalf("after rotation: signing %s, keys %v", a.srv.KeySet().SigningKID(), a.srv.KeySet().KIDs())
	}
	t.Logf("%d checks, none refused", checked.Load())
}

// TestActiveKIDMustNameAKey: an active-kid without its key is a bad
// directory (at start: an error naming it; on reload: old keys kept).
func TestActiveKIDMustNameAKey(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, "k1", false)
	writeKey(t, dir, "k2", false)
	writeFile(t, dir, ActiveKIDFile, "k1\n")
	ks, err := LoadKeyDir(dir)
	if err != nil || ks.SigningKID() != "k1" {
		t.Fatalf("active k1 of k1,k2: %v %v", ks, err)
	}
	writeFile(t, dir, ActiveKIDFile, "k3")
	if _, err := LoadKeyDir(dir); err == nil || !strings.Contains(err.Error(), `"k3"`) {
		t.Fatalf("active-kid naming a missing key: %v", err)
	}
}
