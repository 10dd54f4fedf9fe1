package tests

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/internal/mockengine"
)

const (
	typeSelfSignedCert    = "tls:index/selfSignedCert:SelfSignedCert"
	typeLocallySignedCert = "tls:index/locallySignedCert:LocallySignedCert"
)

// inventoryOf resolves the entries of the `certificates` output under the mock engine.
func inventoryOf(t *testing.T, entries []pulumi.Output) []components.ManagedCertificate {
	t.Helper()
	done := make(chan []any, 1)
	components.Inventory(entries).ApplyT(func(v []any) int { done <- v; return 0 })
	b, err := json.Marshal(<-done)
	if err != nil {
		t.Fatal(err)
	}
	var out []components.ManagedCertificate
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPkiInventoryListsEveryCertificate: every certificate the PKI issues (each CA, the server and
// upstream certificates, each backend's and client's) has exactly one inventory entry with the
// expiry the tls provider reports and the renewal point certEarlyRenewalHours before it; no PEM.
func TestPkiInventoryListsEveryCertificate(t *testing.T) {
	eng := mockengine.New("ztedge", "dev", "")
	var got []components.ManagedCertificate
	const caHours, certHours, early = 26280, 2160, 360
	err := eng.Run(func(ctx *pulumi.Context) error {
		backends := []components.Backend{{Name: "orders", Namespace: "orders", Port: 8443, Prefix: "/api/orders/"}}
		pki, err := components.NewPki(ctx, "pki", &components.PkiArgs{
			CommonName: "ztedge dev edge CA", Hostname: "edge.example.com",
			AmbassadorNamespace: pulumi.String("ambassador"), AmbassadorNamespaceName: "ambassador", AmbassadorServiceName: "emissary-ingress",
			TrustedClients:    []components.TrustedClient{{Name: "web-app", Services: []string{"/api/"}}, {Name: "batch", Services: []string{"/api/"}}},
			Backends:          backends,
			BackendNamespaces: map[string]pulumi.StringOutput{"orders": pulumi.String("orders").ToStringOutput()},
			CaValidityHours:   caHours, ValidityPeriodHours: certHours, EarlyRenewalHours: early,
		})
		if err != nil {
			return err
		}
		got = inventoryOf(t, pki.Inventory)
		return nil
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &graph{t: t, eng: eng, all: eng.Resources()}
	issued := len(g.ofType(typeSelfSignedCert)) + len(g.ofType(typeLocallySignedCert))
	if len(got) != issued || issued != 3+2+1+2 {
		t.Fatalf("%d inventory entries for %d issued certificates (want 3 CAs, server, upstream, 1 backend, 2 clients)", len(got), issued)
	}
	names := map[string]bool{}
	for _, c := range got {
		names[c.Name] = true
		hours := certHours
		if c.Kind == components.KindCA {
			hours = caHours
		}
		wantEnd := mockengine.MockIssueTime.Add(time.Duration(hours) * time.Hour)
		end, err := time.Parse(time.RFC3339, c.NotAfter)
		renew, err2 := time.Parse(time.RFC3339, c.RenewAfter)
		if err != nil || err2 != nil || !end.Equal(wantEnd) || !renew.Equal(wantEnd.Add(-early*time.Hour)) {
			t.Errorf("%s: notAfter %s renewAfter %s; want %s and %d hours before", c.Name, c.NotAfter, c.RenewAfter, wantEnd.Format(time.RFC3339), early)
		}
		if c.RenewedBy != components.RenewedByUp || c.Subject == "" {
			t.Errorf("%s: renewed by %q, subject %q", c.Name, c.RenewedBy, c.Subject)
		}
	}
	for _, want := range []string{"ztedge dev edge CA", "ztedge dev client CA", "ztedge dev upstream CA", "Ambassador server certificate",
		"Ambassador upstream client certificate", "backend orders server certificate", "trusted client web-app", "trusted client batch"} {
		if !names[want] {
			t.Errorf("no inventory entry %q in %v", want, names)
		}
	}
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "BEGIN") {
		t.Errorf("the inventory carries PEM: %s", b)
	}
}

// TestACMAndSigningKeyInventory: the ACM certificate ztedge requests is listed with ACM's expiry
// and renewal; an existing certificate (not ztedge's) is not; signing keys carry their phase.
func TestACMAndSigningKeyInventory(t *testing.T) {
	eng := mockengine.New("ztedge", "dev", "us-east-1")
	var requested, existing, keys []components.ManagedCertificate
	err := eng.Run(func(ctx *pulumi.Context) error {
		c, err := components.NewCertificate(ctx, "edge", &components.CertificateArgs{Hostname: "edge.example.com", HostedZoneID: "Z0123456789EXAMPLE"})
		if err != nil {
			return err
		}
		requested = inventoryOf(t, c.Inventory)
		e, err := components.NewCertificate(ctx, "byo", &components.CertificateArgs{Hostname: "edge.example.com",
			ExistingArn: "arn:aws:acm:us-east-1:123456789012:certificate/0f8fad5b-d9cb-469f-a165-70867728950e"})
		if err != nil {
			return err
		}
		existing = inventoryOf(t, e.Inventory)
		keys = inventoryOf(t, components.SigningKeyEntries([]components.SigningKey{{ID: "k2", Phase: "next"}, {ID: "k1", Phase: "active"}}))
		return nil
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(requested) != 1 || requested[0].Kind != components.KindACM || requested[0].RenewedBy != components.RenewedByACM ||
		requested[0].NotAfter != mockengine.MockIssueTime.Add(395*24*time.Hour).Format(time.RFC3339) || requested[0].Subject != "edge.example.com" {
		t.Errorf("ACM entry %+v", requested)
	}
	if len(existing) != 0 {
		t.Errorf("an existing certificate is listed as managed: %+v", existing)
	}
	if len(keys) != 2 || keys[0].Phase != "next" || keys[1].Phase != "active" || keys[0].RenewedBy != components.RenewedByRotation || keys[0].NotAfter != "" {
		t.Errorf("signing key entries %+v", keys)
	}
}
