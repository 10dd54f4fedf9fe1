package components

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ALB listener attributes that rename the header carrying the client certificate, by clientAuth
// mode: the chain in passthrough, the leaf in verify (ELB API listener attributes, passed through by
// the controller's listener-attributes annotation; docs/jwt-auth.md, "Secret certificate header names").
var albCertHeaderAttribute = map[string]string{
	ClientAuthALBPassthrough: "routing.http.request.x_amzn_mtls_clientcert.header_name",
	ClientAuthALBVerify:      "routing.http.request.x_amzn_mtls_clientcert_leaf.header_name",
}

// certHeaderNamePrefix starts every secret name; 24 hex digits (96 bits: one guess per request)
// follow, so the name is 33 letters, digits and dashes: inside jwt-auth's rule (16 to 64), an HTTP
// token, and short, as the ELB API documents no limit for it that we could check.
const certHeaderNamePrefix = "X-Ztedge-"

// CertHeaderName is the stack's own name for the ALB's client-certificate header: jwt-auth
// believes the certificate only under this name and refuses any request carrying a default name
// (X-Amzn-Mtls-Clientcert, -Leaf, XFCC). A client cannot send the header jwt-auth believes without
// knowing the name, whatever the ALB does with a copy the client sent under a default name.
//
// The name comes from a key the tls provider generates once and keeps in the state as a secret
// (no random provider is available to this program): the name is a hash of it, a secret output,
// stable until the key is replaced (`up --replace` of the key renames the header).
type CertHeaderName struct {
	// Name is secret; Lower is the same name lower-cased, as Envoy lists request headers.
	Name, Lower pulumi.StringOutput
	// Version changes when the key does and is not secret (the key's public half): jwt-auth's
	// checksum annotation reads it, so the pods restart with a new name (a mode change restarts
	// them anyway: jwt-auth's arguments change).
	Version pulumi.StringOutput
}

// ExtAuthHeader is the name as the engine's ext_authz lists the request headers it passes to
// jwt-auth (lower case); nil without a name, so a nil *CertHeaderName means "none".
func (n *CertHeaderName) ExtAuthHeader() pulumi.StringInput {
	if n == nil {
		return nil
	}
	return n.Lower
}

// ALBHeader is the name the load balancer gives the header; nil without one.
func (n *CertHeaderName) ALBHeader() pulumi.StringInput {
	if n == nil {
		return nil
	}
	return n.Name
}

// newCertHeaderName creates the key behind the stack's certificate header name for a clientAuth
// mode. The mode is part of the name: switching between the ALB modes renames the header, so until
// the ALB, the engine and jwt-auth all have the change, certificates are refused (never believed
// from a listener that does not yet do what the new mode expects).
func newCertHeaderName(ctx *pulumi.Context, name, clientAuth string, opts ...pulumi.ResourceOption) (*CertHeaderName, error) {
	key, err := newKey(ctx, name+"-cert-header-name", opts...)
	if err != nil {
		return nil, err
	}
	headerName := pulumi.ToSecret(key.PrivateKeyPem.ApplyT(func(keyPem string) string {
		return certHeaderNameFrom(keyPem, clientAuth)
	})).(pulumi.StringOutput)
	return &CertHeaderName{
		Name:    headerName,
		Lower:   headerName.ApplyT(strings.ToLower).(pulumi.StringOutput),
		Version: key.PublicKeyPem,
	}, nil
}

// certHeaderNameFrom derives the header name from the key's secret PEM and the mode
// (domain-separated, so the hash serves no other purpose).
func certHeaderNameFrom(keyPem, clientAuth string) string {
	sum := sha256.Sum256([]byte("ztedge client-certificate header name v1\n" + clientAuth + "\n" + keyPem))
	return certHeaderNamePrefix + hex.EncodeToString(sum[:12])
}

// albListenerAttributes is the controller's listener-attributes annotation value for port 443:
// the mode's certificate header renamed; "" when there is nothing to rename.
func albListenerAttributes(clientAuth, certHeaderName string) string {
	attribute, ok := albCertHeaderAttribute[clientAuth]
	if !ok || certHeaderName == "" {
		return ""
	}
	return attribute + "=" + certHeaderName
}
