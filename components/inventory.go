package components

import (
	"encoding/json"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The stack output `certificates` lists every certificate and signing key a stack manages, with
// public facts only (no PEM, no key): what `ztedge certs` prints and the renewal workflow checks.

// Kinds of inventory entries.
const (
	KindCA         = "ca"          // a ztedge CA (edge, client, upstream)
	KindServer     = "server"      // a server certificate (Ambassador, a backend)
	KindClient     = "client"      // a client certificate (a trusted client, Ambassador upstream)
	KindACM        = "acm"         // the ACM certificate of the load balancer
	KindSigningKey = "signing-key" // a jwt-auth signing key
)

// Renewal says who renews an entry.
const (
	RenewedByUp       = "up"       // the first `up` after RenewAfter re-issues it (tls provider early renewal)
	RenewedByACM      = "acm"      // ACM's managed renewal (DNS validation record kept)
	RenewedByRotation = "rotation" // never expires; rotated by ztedge:authSigningKeys phases
)

// ManagedCertificate is one entry of the `certificates` output.
type ManagedCertificate struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Subject string `json:"subject,omitempty"`
	// NotAfter is the expiry (RFC 3339, UTC); empty for a signing key.
	NotAfter string `json:"notAfter,omitempty"`
	// RenewAfter is when `up` starts re-issuing it (NotAfter minus certEarlyRenewalHours).
	RenewAfter string `json:"renewAfter,omitempty"`
	// ReadyForRenewal: the next `up` re-issues it (the provider says RenewAfter has passed).
	ReadyForRenewal bool   `json:"readyForRenewal,omitempty"`
	RenewedBy       string `json:"renewedBy"`
	// Phase of a signing key (next, active, retiring).
	Phase string `json:"phase,omitempty"`
}

// value is the entry as the output carries it (the engine marshals maps, not tagged structs).
func (m ManagedCertificate) value() map[string]any {
	b, _ := json.Marshal(m)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return v
}

// issuedCertificate is an inventory entry of a certificate the tls provider issued: its expiry
// comes from the provider (validityEndTime), the renewal point from the early-renewal setting.
func issuedCertificate(name, kind, subject string, notAfter pulumi.StringOutput, ready pulumi.BoolOutput, earlyRenewalHours int) pulumi.Output {
	return pulumi.All(notAfter, ready).ApplyT(func(v []any) map[string]any {
		end := v[0].(string)
		m := ManagedCertificate{Name: name, Kind: kind, Subject: subject, NotAfter: end, ReadyForRenewal: v[1].(bool), RenewedBy: RenewedByUp}
		if t, err := time.Parse(time.RFC3339, end); err == nil {
			m.RenewAfter = t.Add(-time.Duration(earlyRenewalHours) * time.Hour).UTC().Format(time.RFC3339)
		}
		return m.value()
	})
}

// ACMCertificate is the inventory entry of the ACM certificate ztedge requested.
func ACMCertificate(subject string, notAfter pulumi.StringOutput) pulumi.Output {
	return notAfter.ApplyT(func(end string) map[string]any {
		return ManagedCertificate{Name: "load balancer certificate (ACM)", Kind: KindACM, Subject: subject, NotAfter: end, RenewedBy: RenewedByACM}.value()
	})
}

// SigningKeyEntries are the inventory entries of jwt-auth's signing keys.
func SigningKeyEntries(keys []SigningKey) []pulumi.Output {
	var out []pulumi.Output
	for _, k := range keys {
		out = append(out, pulumi.ToOutput(ManagedCertificate{Name: "jwt-auth signing key " + k.ID, Kind: KindSigningKey, Phase: k.Phase, RenewedBy: RenewedByRotation}.value()))
	}
	return out
}

// Inventory resolves entries into the `certificates` output value.
func Inventory(entries []pulumi.Output) pulumi.ArrayOutput {
	in := make([]any, len(entries))
	for i, e := range entries {
		in[i] = e
	}
	return pulumi.All(in...).ApplyT(func(v []any) []any { return v }).(pulumi.ArrayOutput)
}
