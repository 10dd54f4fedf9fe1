package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// maxFloodUsernameBytes keeps one login form under jwt-auth's 64 KiB form limit.
const maxFloodUsernameBytes = 60 << 10

// floodResult counts the /token answers of a login flood by status.
type floodResult struct {
	mu       sync.Mutex
	byStatus map[string]int
}

func (f *floodResult) add(status string) {
	f.mu.Lock()
	f.byStatus[status]++
	f.mu.Unlock()
}

// flood runs o.flood workers posting wrong-password logins until ctx ends or
// o.floodRequests logins were sent. Every login comes from a new
// X-Forwarded-For address and names a new user, so no per-source or
// per-user throttle ever stops it (jwt-auth must run with --trusted-hops 1):
// only jwt-auth's global bounds can.
func flood(ctx context.Context, c *http.Client, base string, o options) *floodResult {
	res := &floodResult{byStatus: map[string]int{}}
	var sent atomic.Int64
	pad := strings.Repeat("u", o.floodUsernameBytes)
	var wg sync.WaitGroup
	for w := range o.flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := sent.Add(1)
				if n > int64(o.floodRequests) {
					return
				}
				form := url.Values{"grant_type": {"password"}, "username": {fmt.Sprintf("%s%d-%d", pad, w, n)}, "password": {"wrong"}}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), 1+rand.IntN(254)))
				resp, err := c.Do(req)
				switch {
				case err != nil && ctx.Err() != nil:
					return
				case err != nil:
					res.add("error")
				default:
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					res.add(fmt.Sprint(resp.StatusCode))
				}
			}
		}()
	}
	wg.Wait()
	return res
}

func (f *floodResult) print(out io.Writer) {
	var keys []string
	for k := range f.byStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, f.byStatus[k]))
	}
	fmt.Fprintf(out, "login flood answers: %s\n", strings.Join(parts, ", "))
}

// printHeap prints jwt-auth's heap metrics: go_gc_heap_live_bytes is the
// heap marked live by the last GC (what the attack could make jwt-auth
// keep), go_memstats_heap_inuse_bytes includes garbage not yet collected.
func printHeap(c *http.Client, base string, out io.Writer) error {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range []string{"go_gc_heap_live_bytes ", "go_memstats_heap_inuse_bytes "} {
			if strings.HasPrefix(line, m) {
				var v float64
				fmt.Sscan(strings.TrimPrefix(line, m), &v)
				fmt.Fprintf(out, "jwt-auth %s= %.1f MiB\n", m, v/(1<<20))
			}
		}
	}
	return sc.Err()
}
