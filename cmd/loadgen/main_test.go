package main

import (
	"strings"
	"testing"
)

func TestLoopbackOnly(t *testing.T) {
	for target, want := range map[string]string{
		"http://127.0.0.1:3901":   "http://127.0.0.1:3901",
		"http://localhost:3901/":  "http://127.0.0.1:3901",
		"http://127.9.9.9:80":     "http://127.9.9.9:80",
		"http://[::1]:3901":       "http://[::1]:3901",
		"http://10.0.0.1:3901":    "",
		"http://192.168.1.1:3901": "",
		"http://example.com:3901": "",
		"https://127.0.0.1:3901":  "",
		"http://0.0.0.0:3901":     "",
	} {
		got, err := loopbackBase(target)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "-target") {
				t.Errorf("%s accepted as %s", target, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: %s %v", target, got, err)
		}
	}
}

func TestBounds(t *testing.T) {
	base := options{target: "http://127.0.0.1:1", concurrency: 1, requests: 1}
	for _, o := range []options{
		{duration: 0}, {duration: maxDuration + 1},
	} {
		o.target, o.concurrency, o.requests = base.target, base.concurrency, base.requests
		if err := run(o, nil); err == nil || !strings.Contains(err.Error(), "-duration") {
			t.Errorf("%v: %v", o.duration, err)
		}
	}
	o := base
	o.duration, o.requests = 1, maxRequests+1
	if err := run(o, nil); err == nil || !strings.Contains(err.Error(), "-requests") {
		t.Errorf("requests bound: %v", err)
	}
}

// The memory probe and first-sight runs are bounded too.
func TestProbeBounds(t *testing.T) {
	for _, o := range []options{
		{headerFlood: maxHeaderFlood + 1}, {headerFlood: 1, headerBytes: maxHeaderBytes + 1},
		{freshTokens: maxFreshTokens + 1, signingKey: "k.pem"}, {freshTokens: 10},
	} {
		o.target, o.concurrency, o.requests, o.duration, o.floodRequests = "http://127.0.0.1:1", 1, 1, 1, 1
		err := run(o, nil)
		if err == nil || !strings.Contains(err.Error(), "-header-flood") && !strings.Contains(err.Error(), "-fresh-tokens") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if err := serveBare("10.0.0.1:80", 1); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("-serve-bare on a non-loopback address: %v", err)
	}
}

func TestBigHeaderRequest(t *testing.T) {
	req := bigHeaderRequest("/auth/x", 60<<10)
	if n := len(req); n < 60<<10 || n > 61<<10 || !strings.HasSuffix(string(req), "\r\n\r\n") {
		t.Errorf("request of %d bytes", n)
	}
}
