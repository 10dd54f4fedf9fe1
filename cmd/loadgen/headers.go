package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the big-header flood (-header-flood): the memory probe of
// docs/jwt-auth.md, "Login floods and memory".
const (
	maxHeaderFlood = 4096
	maxHeaderBytes = 64 << 10
)

// headerFloodResult counts the flood's answers by status, and failed
// connections by what failed.
type headerFloodResult struct {
	mu       sync.Mutex
	byStatus map[string]int
	sent     atomic.Int64
}

func (f *headerFloodResult) add(s string) {
	f.mu.Lock()
	f.byStatus[s]++
	f.mu.Unlock()
}

func (f *headerFloodResult) print(out io.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.byStatus))
	for k := range f.byStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s × %d", k, f.byStatus[k]))
	}
	fmt.Fprintf(out, "header flood: %d requests sent; answers %s\n", f.sent.Load(), strings.Join(parts, ", "))
}

// bigHeaderRequest is a check without credentials carrying n bytes of
// headers in 4 KiB values (many header lines grow the header map too).
func bigHeaderRequest(path string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "X-Pad-%d: %s\r\n", i, strings.Repeat("p", min(4<<10, max(1, n-b.Len()-32))))
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// headerFlood runs o.headerFlood clients, each on its own keep-alive
// connection, sending checks with o.headerBytes of headers as fast as they
// are answered, redialling when a connection fails, until ctx ends.
func headerFlood(ctx context.Context, addr string, o options) *headerFloodResult {
	res := &headerFloodResult{byStatus: map[string]int{}}
	req := bigHeaderRequest(o.path, o.headerBytes)
	var wg sync.WaitGroup
	for range o.headerFlood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					if ctx.Err() == nil {
						res.add("dial error")
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				br := bufio.NewReader(conn)
				for ctx.Err() == nil {
					res.sent.Add(1)
					if _, err := conn.Write(req); err != nil {
						break
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						if ctx.Err() == nil {
							res.add("connection error")
						}
						break
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					res.add(strconv.Itoa(resp.StatusCode))
					if resp.Close {
						break
					}
				}
				stop()
				conn.Close()
			}
		}()
	}
	wg.Wait()
	return res
}

// rssSampler records a process's resident memory: the peak it saw and the
// kernel's own high-water mark (VmHWM), from /proc/<pid>/status.
type rssSampler struct {
	pid  int
	peak atomic.Int64
}

func procStatusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

func (s *rssSampler) run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if kib, err := procStatusKiB(s.pid, "VmRSS"); err == nil && kib > s.peak.Load() {
			s.peak.Store(kib)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// headerFloodRun is a running -header-flood with its RSS sampler.
type headerFloodRun struct {
	o       options
	cancel  context.CancelFunc
	done    chan struct{}
	res     *headerFloodResult
	sampler *rssSampler
}

// startHeaderFlood opens the check connections first (as Envoy's pool
// holds them), then starts the flood and gives it a second to fill
// jwt-auth's connection limit before the checks are measured.
func startHeaderFlood(c *http.Client, base string, o options, out io.Writer) *headerFloodRun {
	r := &headerFloodRun{o: o, cancel: func() {}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if o.pid > 0 {
		r.sampler = &rssSampler{pid: o.pid}
		go r.sampler.run(ctx)
	}
	if o.headerFlood == 0 {
		close(r.done)
		return r
	}
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := c.Get(base + "/healthz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(out, "header flood: %d clients × %d header bytes, from 1 s before the checks to their end\n", o.headerFlood, o.headerBytes)
	go func() {
		r.res = headerFlood(ctx, strings.TrimPrefix(base, "http://"), o)
		close(r.done)
	}()
	time.Sleep(time.Second)
	return r
}

func (r *headerFloodRun) stop() {
	r.cancel()
	<-r.done
}

// report stops the flood and prints its answers and jwt-auth's peak RSS;
// it fails when the peak is over -rss-limit-mib.
func (r *headerFloodRun) report(out io.Writer) error {
	r.stop()
	if r.res != nil {
		r.res.print(out)
	}
	if r.sampler == nil {
		return nil
	}
	hwm, err := procStatusKiB(r.o.pid, "VmHWM")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "jwt-auth peak RSS %.1f MiB (VmHWM; sampled peak %.1f MiB)", float64(hwm)/1024, float64(r.sampler.peak.Load())/1024)
	if r.o.rssLimitMiB > 0 {
		fmt.Fprintf(out, ", limit %d MiB", r.o.rssLimitMiB)
	}
	fmt.Fprintln(out)
	if r.o.rssLimitMiB > 0 && hwm > r.o.rssLimitMiB<<10 {
		return fmt.Errorf("jwt-auth peak RSS %d KiB is over the %d MiB limit", hwm, r.o.rssLimitMiB)
	}
	return nil
}
