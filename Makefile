# ztedge Makefile. Each component keeps its targets in a section of its
# own; keep recipes short and put longer logic in scripts beside the code.

GO  ?= go
BIN ?= bin

# --- jwt-auth (internal/jwtauth, cmd/jwt-auth; docs/jwt-auth.md) ---------

JWT_AUTH_IMAGE ?= ghcr.io/ztedge/jwt-auth
JWT_AUTH_TAG   ?= dev

.PHONY: jwt-auth jwt-auth-oci jwt-auth-image bench-auth load-auth

# Static binary, built the way the image builds it.
jwt-auth:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/jwt-auth ./cmd/jwt-auth

# The image as the release builds it (internal/ociimage), no Docker needed:
# $(BIN)/jwt-auth-oci, an OCI layout for linux/amd64 and linux/arm64, and
# $(BIN)/jwt-auth.tar, a docker-archive of this machine's platform tagged
# $(JWT_AUTH_IMAGE):$(JWT_AUTH_TAG), for kind load image-archive / k3d image import.
jwt-auth-oci:
	$(GO) run ./cmd/imagebuild -out $(BIN)/jwt-auth-oci -tarball $(BIN)/jwt-auth.tar -ref $(JWT_AUTH_IMAGE):$(JWT_AUTH_TAG)

# Needs Docker (BuildKit); the build context is the repository root. Same recipe.
jwt-auth-image:
	docker build -f cmd/jwt-auth/Dockerfile -t $(JWT_AUTH_IMAGE):$(JWT_AUTH_TAG) .

# In-process check-path benchmarks (ns/op, allocs/op).
bench-auth:
	$(GO) test ./internal/jwtauth/ -run '^$$' -bench . -benchmem -count 1

# Loopback load run: jwt-auth on 127.0.0.1 driven by cmd/loadgen
# (and wrk with WRK=1); knobs are listed at the top of the script.
load-auth: jwt-auth
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/loadgen ./cmd/loadgen
	BIN=$(BIN) sh cmd/loadgen/load-auth.sh

# --- real-engine tier (e2e/; README "Testing on a real engine") ------------

.PHONY: e2e

# Builds the Pulumi CLI, etcd, the Kubernetes control plane and kwok from the Go module
# proxy (cached by version under ~/.cache/ztedge-e2e), then deploys the local stack to it.
e2e:
	bash e2e/run.sh
