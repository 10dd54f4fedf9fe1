package main

// The Mozilla root certificates, used by crypto/x509 only when the system has none: the image is
// FROM scratch (internal/ociimage), with no CA bundle file, and jwt-auth fetches an upstream OIDC
// issuer's JWKS over HTTPS (--oidc-jwks-url). On a system with a CA bundle, that bundle is used.
import _ "golang.org/x/crypto/x509roots/fallback"
