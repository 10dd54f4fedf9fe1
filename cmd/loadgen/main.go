// Command loadgen drives the jwt-auth check endpoint on loopback and
// reports throughput and latency percentiles. It refuses any target that
// is not a loopback address, and every run is bounded in both request
// count and time.
//
//	loadgen -target http://127.0.0.1:3901 -username load -password pw -duration 10s -concurrency 32
//
// With -flood N it also runs N workers sending wrong-password logins, each
// from a new X-Forwarded-For address and for a new user, and reports the
// checks' latency under that flood; -heap prints jwt-auth's heap after.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxDuration = 2 * time.Minute
	maxRequests = 20_000_000
)

type options struct {
	target      string
	path        string
	token       string
	username    string
	password    string
	origin      string
	concurrency int
	duration    time.Duration
	requests    int
	expect      int
	waitReady   time.Duration
	printToken  bool

	flood              int // concurrent login flooders (0: none)
	floodRequests      int // stop the flood after this many logins
	floodUsernameBytes int // pad every flood username to at least this length
	heap               bool

	headerFlood int   // clients sending big-header checks without credentials (0: none)
	headerBytes int   // header bytes of each of their requests
	pid         int   // jwt-auth's pid: report its peak RSS
	rssLimitMiB int64 // fail when jwt-auth's peak RSS exceeds this

	freshTokens int    // sign this many distinct tokens: every check a first sight
	signingKey  string // <kid>.pem to sign them with
	issuer      string
	audience    string
	serveBare   string // run a bare net/http server on this address instead
}

func main() {
	var o options
	flag.StringVar(&o.target, "target", "http://127.0.0.1:3000", "jwt-auth base URL (loopback only)")
	flag.StringVar(&o.path, "path", "/auth/api/orders/1", "check path to request")
	flag.StringVar(&o.token, "token", "", "bearer token (else one is fetched with -username/-password)")
	flag.StringVar(&o.username, "username", "", "user for grant_type=password")
	flag.StringVar(&o.password, "password", "", "password for grant_type=password")
	flag.StringVar(&o.origin, "origin", "", "Origin header to send")
	flag.IntVar(&o.concurrency, "concurrency", 32, "concurrent keep-alive connections")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run (at most 2m)")
	flag.IntVar(&o.requests, "requests", 5_000_000, "stop after this many requests (at most 20M)")
	flag.IntVar(&o.expect, "expect", http.StatusOK, "status every response must have")
	flag.DurationVar(&o.waitReady, "wait-ready", 10*time.Second, "wait this long for /readyz first")
	flag.BoolVar(&o.printToken, "print-token", false, "fetch a token with -username/-password, print it and exit (for wrk)")
	flag.IntVar(&o.flood, "flood", 0, "concurrent workers flooding POST /token with wrong-password logins during the run (at most 1024)")
	flag.IntVar(&o.floodRequests, "flood-requests", maxRequests, "stop the login flood after this many logins")
	flag.IntVar(&o.floodUsernameBytes, "flood-username-bytes", 0, "pad flood usernames to this many bytes (at most 60 KiB)")
	flag.BoolVar(&o.heap, "heap", false, "print jwt-auth's heap (from /metrics) after the run")
	flag.IntVar(&o.headerFlood, "header-flood", 0, "clients, each on its own connection, sending checks without credentials with -header-bytes of headers during the run (at most 4096)")
	flag.IntVar(&o.headerBytes, "header-bytes", 60<<10, "header bytes of each -header-flood request (at most 64 KiB)")
	flag.IntVar(&o.pid, "pid", 0, "jwt-auth's process id: report its peak resident memory (VmHWM)")
	flag.Int64Var(&o.rssLimitMiB, "rss-limit-mib", 0, "with -pid: fail if jwt-auth's peak resident memory exceeds this many MiB")
	flag.IntVar(&o.freshTokens, "fresh-tokens", 0, "sign this many distinct tokens with -signing-key and use each once (every check is a first sight; at most 200000, also the request bound)")
	flag.StringVar(&o.signingKey, "signing-key", "", "with -fresh-tokens: jwt-auth's <kid>.pem signing key")
	flag.StringVar(&o.issuer, "issuer", "https://auth.load.test", "with -fresh-tokens: iss")
	flag.StringVar(&o.audience, "audience", "ztedge", "with -fresh-tokens: aud")
	flag.StringVar(&o.serveBare, "serve-bare", "", "instead of load: serve 200 with the identity headers on this loopback address for -duration (the bare net/http figure)")
	flag.Parse()
	if o.serveBare != "" {
		if err := serveBare(o.serveBare, o.duration); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800) // keep the generator's own GC out of the latencies
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// loopbackBase validates the target: http, and a loopback IP or
// "localhost" (mapped to 127.0.0.1 without asking DNS).
func loopbackBase(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-target %q: want http://127.0.0.1:PORT", target)
	}
	host, port := u.Hostname(), u.Port()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("-target %q: only loopback addresses (127.0.0.0/8, ::1) may be load-tested", target)
	}
	if port == "" {
		port = "80"
	}
	return "http://" + net.JoinHostPort(ip.String(), port), nil
}

func run(o options, out io.Writer) error {
	base, err := loopbackBase(o.target)
	if err != nil {
		return err
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	if o.requests <= 0 || o.requests > maxRequests {
		return fmt.Errorf("-requests must be in (0, %d]", maxRequests)
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		return errors.New("-concurrency must be in [1, 1024]")
	}
	if o.flood < 0 || o.flood > 1024 || o.floodRequests <= 0 || o.floodRequests > maxRequests ||
		o.floodUsernameBytes < 0 || o.floodUsernameBytes > maxFloodUsernameBytes {
		return fmt.Errorf("-flood must be in [0, 1024], -flood-requests in (0, %d], -flood-username-bytes in [0, %d]", maxRequests, maxFloodUsernameBytes)
	}
	if o.headerFlood < 0 || o.headerFlood > maxHeaderFlood || o.headerBytes < 0 || o.headerBytes > maxHeaderBytes {
		return fmt.Errorf("-header-flood must be in [0, %d], -header-bytes in [0, %d]", maxHeaderFlood, maxHeaderBytes)
	}
	if o.freshTokens < 0 || o.freshTokens > maxFreshTokens || (o.freshTokens > 0 && o.signingKey == "") {
		return fmt.Errorf("-fresh-tokens must be in [0, %d] and needs -signing-key", maxFreshTokens)
	}
	conns := o.concurrency + o.flood
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	if err := waitReady(client, base, o.waitReady); err != nil {
		return err
	}
	var fresh []string
	if o.freshTokens > 0 {
		if fresh, err = freshTokens(o.signingKey, o.issuer, o.audience, o.origin, o.freshTokens); err != nil {
			return err
		}
		o.token, o.requests = fresh[0], min(o.requests, len(fresh))
	}
	if o.token == "" {
		// One bcrypt login: allow for a busy machine and production cost.
		slow := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		if o.token, err = fetchToken(slow, base, o.username, o.password); err != nil {
			return err
		}
	}
	if o.printToken {
		_, err := fmt.Fprintln(out, o.token)
		return err
	}
	hf := startHeaderFlood(client, base, o, out)
	defer hf.stop()
	// A flood bounded by -flood-requests also ends the checks: the run is
	// about what happens while it lasts.
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var floodRes *floodResult
	floodDone := make(chan struct{})
	if o.flood > 0 {
		go func() {
			floodRes = flood(ctx, client, base, o)
			if o.floodRequests < maxRequests {
				cancel()
			}
			close(floodDone)
		}()
	} else {
		close(floodDone)
	}
	res := hammer(ctx, client, base+o.path, o, fresh)
	<-floodDone
	res.print(out, o)
	if floodRes != nil {
		floodRes.print(out)
	}
	if err := hf.report(out); err != nil {
		return err
	}
	if o.heap {
		if err := printHeap(client, base, out); err != nil {
			return err
		}
	}
	if res.errors > 0 {
		return fmt.Errorf("%d errors", res.errors)
	}
	return nil
}

func waitReady(c *http.Client, base string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := c.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready after %s", base, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetchToken(c *http.Client, base, user, pw string) (string, error) {
	if user == "" {
		return "", errors.New("give -token or -username/-password")
	}
	resp, err := c.PostForm(base+"/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var m struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m.AccessToken == "" {
		return "", fmt.Errorf("token request: HTTP %d %s %v", resp.StatusCode, m.Error, err)
	}
	return m.AccessToken, nil
}

type result struct {
	elapsed   time.Duration
	latencies []time.Duration
	errors    int64
	firstErr  string
}

// hammer runs o.concurrency workers until the time or count bound.
// With fresh tokens, request i carries fresh[i].
func hammer(ctx context.Context, c *http.Client, target string, o options, fresh []string) *result {
	var (
		issued   atomic.Int64
		errs     atomic.Int64
		mu       sync.Mutex
		firstErr string
		all      [][]time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			req.Header.Set("Authorization", "Bearer "+o.token)
			if o.origin != "" {
				req.Header.Set("Origin", o.origin)
			}
			for ctx.Err() == nil {
				n := issued.Add(1)
				if n > int64(o.requests) {
					break
				}
				if fresh != nil {
					req.Header.Set("Authorization", "Bearer "+fresh[n-1])
				}
				t0 := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if ctx.Err() != nil && err != nil {
					break // cut off by the time bound, not a server error
				}
				lat = append(lat, time.Since(t0))
				if err != nil || resp.StatusCode != o.expect {
					errs.Add(1)
					mu.Lock()
					if firstErr == "" {
						if err != nil {
							firstErr = err.Error()
						} else {
							firstErr = fmt.Sprintf("HTTP %d", resp.StatusCode)
						}
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			all = append(all, lat)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := &result{elapsed: time.Since(start), errors: errs.Load(), firstErr: firstErr}
	r.latencies = slices.Concat(all...)
	slices.Sort(r.latencies)
	return r
}

func (r *result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(r.latencies)-1))
	return r.latencies[i]
}

func (r *result) print(out io.Writer, o options) {
	n := len(r.latencies)
	fmt.Fprintf(out, "target %s%s, %d connections, %s\n", strings.TrimSuffix(o.target, "/"), o.path, o.concurrency, r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "requests %d, errors %d, throughput %.0f checks/s\n", n, r.errors, float64(n)/r.elapsed.Seconds())
	fmt.Fprintf(out, "latency p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n",
		r.pct(50), r.pct(90), r.pct(99), r.pct(99.9), r.pct(100))
	if r.firstErr != "" {
		fmt.Fprintf(out, "first error: %s\n", r.firstErr)
	}
}
