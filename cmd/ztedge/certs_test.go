package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ztedge/ztedge/components"
)

// TestCertsStatus: each entry's status from its expiry and renewal point, soonest first, keys
// last, and a failing exit when anything is expired, due or (with --warn-days) expiring soon.
func TestCertsStatus(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	day := 24 * time.Hour
	entry := func(name string, notAfter, renewAfter time.Duration) components.ManagedCertificate {
		return components.ManagedCertificate{Name: name, Kind: components.KindServer, NotAfter: at(notAfter), RenewAfter: at(renewAfter), RenewedBy: components.RenewedByUp}
	}
	key := components.ManagedCertificate{Name: "jwt-auth signing key k1", Kind: components.KindSigningKey, Phase: "active", RenewedBy: components.RenewedByRotation}
	acm := components.ManagedCertificate{Name: "acm", Kind: components.KindACM, NotAfter: at(20 * day), RenewedBy: components.RenewedByACM}
	cases := []struct {
		name     string
		certs    []components.ManagedCertificate
		warn     time.Duration
		want     map[string]string // name → status
		wantFail bool
	}{
		{"all fresh", []components.ManagedCertificate{key, entry("a", 80*day, 65*day), acm}, 0,
			map[string]string{"a": "ok", "acm": "ok", key.Name: "ok"}, false},
		{"past its renewal point", []components.ManagedCertificate{entry("a", 10*day, -5*day)}, 0, map[string]string{"a": "due"}, true},
		{"expired", []components.ManagedCertificate{entry("a", -time.Hour, -16*day)}, 0, map[string]string{"a": "EXPIRED"}, true},
		{"within --warn-days", []components.ManagedCertificate{entry("a", 80*day, 65*day), acm}, 30 * day,
			map[string]string{"a": "ok", "acm": "soon"}, true},
		{"ready for renewal says so", []components.ManagedCertificate{func() components.ManagedCertificate {
			c := entry("a", 80*day, 65*day)
			c.ReadyForRenewal = true
			return c
		}()}, 0, map[string]string{"a": "due"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := writeCerts(&out, tc.certs, now, tc.warn, false)
			if failed := errors.Is(err, errCertsNeedAttention); failed != tc.wantFail {
				t.Errorf("error %v; want failure %v", err, tc.wantFail)
			}
			for name, status := range tc.want {
				line := lineOf(out.String(), name)
				if fields := strings.Fields(line); !strings.Contains(line, "  "+status+"  ") {
					t.Errorf("%s: want status %s in %q (%d fields)", name, status, line, len(fields))
				}
			}
		})
	}
	// Order: soonest expiry first, the signing key (no expiry) last.
	var out strings.Builder
	_ = writeCerts(&out, []components.ManagedCertificate{key, entry("late", 80*day, 65*day), entry("early", 40*day, 25*day)}, now, 0, false)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "early") || !strings.HasPrefix(lines[2], "late") || !strings.HasPrefix(lines[3], key.Name) {
		t.Errorf("order:\n%s", out.String())
	}
}

func lineOf(text, name string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

func TestCertificatesOutput(t *testing.T) {
	if _, err := certificatesOutput(nil); err == nil || !strings.Contains(err.Error(), "ztedge up") {
		t.Errorf("a stack without the output: %v", err)
	}
	got, err := certificatesOutput([]any{map[string]any{"name": "x", "kind": "ca", "notAfter": "2027-01-01T00:00:00Z", "renewedBy": "up"}})
	if err != nil || len(got) != 1 || got[0].Name != "x" || got[0].NotAfter != "2027-01-01T00:00:00Z" {
		t.Errorf("%+v %v", got, err)
	}
}
