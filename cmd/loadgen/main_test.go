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
