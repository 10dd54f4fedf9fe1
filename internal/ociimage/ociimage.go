// Package ociimage builds the jwt-auth container image without Docker and without pulling a base
// image: a single layer FROM scratch holding the static jwt-auth binary, /etc/passwd and /etc/group
// with the non-root user 65532 ("nonroot", as in distroless), its home directory and a 1777 /tmp.
// CA certificates are not files in the image: jwt-auth embeds golang.org/x/crypto/x509roots/fallback
// (the Mozilla roots), which crypto/x509 uses when the system has none, for HTTPS calls to an
// upstream OIDC issuer's JWKS URL.
//
// The recipe is the same for every consumer: `make jwt-auth-oci` (cmd/imagebuild) writes an OCI
// layout and a docker-archive tarball for local clusters; the release workflow pushes the OCI layout
// it builds the same way (crane push --index); tests build it and inspect it. cmd/jwt-auth/Dockerfile mirrors it for
// people with Docker (same build flags, same root filesystem, same user and entrypoint; a test
// keeps them in step).
//
// Builds are reproducible: file times and the image creation time are Created (from
// SOURCE_DATE_EPOCH in cmd/imagebuild, else the Unix epoch), the binary is built with -trimpath,
// -buildvcs=false and an empty build ID.
package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// UID and GID of the user the image runs as (distroless "nonroot"); components/auth.go runs the
	// pod as the same user.
	UID = 65532
	GID = 65532
	// User is the image config's User: numeric, so the kubelet can verify runAsNonRoot.
	User = "65532:65532"
	// Entrypoint is the binary's path in the image.
	Entrypoint = "/jwt-auth"
	// Package is the Go package built into the image.
	Package = "./cmd/jwt-auth"
	// RootFS is the directory (relative to the repository root) whose files are copied into the
	// image as they are (/etc/passwd, /etc/group); the Dockerfile copies the same directory.
	RootFS = "cmd/jwt-auth/rootfs"
	// SigningKeysDir is where the Deployment mounts the signing keys (JWT_AUTH_SIGNING_KEYS).
	SigningKeysDir = "/etc/jwt-auth/keys"
	// Port jwt-auth listens on by default.
	Port = "3000/tcp"
)

// LDFlags strip the symbol table and DWARF and clear the build ID, as in the Dockerfile.
const LDFlags = "-s -w -buildid="

// Platforms the image is built for.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// Options of a build.
type Options struct {
	RepoRoot  string        // directory of go.mod
	Platforms []v1.Platform // default Platforms
	Version   string        // org.opencontainers.image.version label
	Revision  string        // org.opencontainers.image.revision label (git commit), optional
	Created   time.Time     // image and file times; zero: the Unix epoch
	WorkDir   string        // where binaries are built; default a temp dir, removed afterwards
	Stderr    io.Writer     // go build output; default os.Stderr
}

// BuildIndex builds the image for every platform and returns the multi-platform OCI index.
func BuildIndex(ctx context.Context, o Options) (v1.ImageIndex, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0).UTC()
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	work := o.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "jwt-auth-image-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		bin := filepath.Join(work, "jwt-auth-"+p.OS+"-"+p.Architecture)
		if err := BuildBinary(ctx, o.RepoRoot, p, bin, o.Stderr); err != nil {
			return nil, err
		}
		img, err := Image(o, p, bin)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		platform := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})
	}
	return idx, nil
}

// BuildBinary compiles jwt-auth statically (CGO_ENABLED=0) for a platform.
func BuildBinary(ctx context.Context, repoRoot string, p v1.Platform, out string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+LDFlags, "-o", out, Package)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %w", Package, p.OS, p.Architecture, err)
	}
	return nil
}

// Image assembles the single-layer image of one platform around a built binary.
func Image(o Options, p v1.Platform, binary string) (v1.Image, error) {
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0).UTC()
	}
	layerTar, err := rootFS(o.RepoRoot, binary, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: o.Created}, CreatedBy: "ztedge internal/ociimage: jwt-auth " + o.Version, Comment: "static binary, passwd/group, /tmp",
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: o.Created}
	labels := map[string]string{
		"org.opencontainers.image.title":       "jwt-auth",
		"org.opencontainers.image.description": "ztedge JWT auth service (Emissary ext_authz)",
		"org.opencontainers.image.source":      "https://github.com/ztedge/ztedge",
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	if o.Version != "" {
		labels["org.opencontainers.image.version"] = o.Version
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   []string{Entrypoint},
		Env:          []string{"JWT_AUTH_SIGNING_KEYS=" + SigningKeysDir},
		ExposedPorts: map[string]struct{}{Port: {}},
		WorkingDir:   "/",
		Labels:       labels,
	}
	return mutate.ConfigFile(img, cf)
}

// rootFS is the layer: directories, the files under RootFS, /tmp, the user's home and the binary.
func rootFS(repoRoot, binary string, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
		uid  int
	}{{"etc", 0o755, 0}, {"home", 0o755, 0}, {"home/nonroot", 0o700, UID}, {"tmp", 0o1777, 0}} {
		if err := dir(d.name, d.mode, d.uid); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{"etc/group", "etc/passwd"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, RootFS, f))
		if err != nil {
			return nil, err
		}
		if err := file(f, 0o644, b); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	if err := file(strings.TrimPrefix(Entrypoint, "/"), 0o755, b); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout writes the index as an OCI image layout: a directory whose index.json is the
// multi-platform index itself (`crane push --index DIR REF` pushes it as is; skopeo and containerd
// read it too). An existing layout at dir is replaced.
func WriteLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	_, err := layout.Write(dir, idx)
	return err
}

// WriteDockerArchive writes one platform's image as a `docker save` tarball tagged ref, the format
// `kind load image-archive`, `k3d image import` and `docker load` take.
func WriteDockerArchive(path, ref string, idx v1.ImageIndex, p v1.Platform) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	img, err := PlatformImage(idx, p)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

// PlatformImage returns the index's image for a platform.
func PlatformImage(idx v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && d.Platform.Variant == p.Variant {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("the index has no %s/%s image", p.OS, p.Architecture)
}

// ParsePlatforms parses "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}
