// Command imagebuild builds the jwt-auth container image (internal/ociimage) for linux/amd64 and
// linux/arm64 without Docker or a base image, and writes it as an OCI image layout and, optionally,
// as a docker-archive tarball of one platform for local clusters.
//
//	go run ./cmd/imagebuild -out bin/jwt-auth-oci -tarball bin/jwt-auth.tar
//	go run ./cmd/imagebuild -check-tag v0.1.0   # exit 1 unless the tag is release.Version
//
// `make jwt-auth-oci` runs the first line. The release workflow runs the same build and pushes the
// layout with `crane push --index`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ztedge/ztedge/internal/ociimage"
	"github.com/ztedge/ztedge/internal/release"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	out := fs.String("out", "bin/jwt-auth-oci", "OCI image layout directory to write (replaced)")
	tarPath := fs.String("tarball", "", "also write a docker-archive tarball of one platform (for kind load image-archive, k3d image import, docker load)")
	tarPlatform := fs.String("tarball-platform", "linux/"+runtime.GOARCH, "platform of the -tarball image")
	ref := fs.String("ref", release.AuthImage, "image reference the tarball is tagged with")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms of the OCI index")
	version := fs.String("version", release.Version, "org.opencontainers.image.version label")
	revision := fs.String("revision", "", "org.opencontainers.image.revision label (git commit)")
	checkTag := fs.String("check-tag", "", "only check that this git tag is the release version "+release.Version+", build nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *checkTag != "" {
		if *checkTag != release.Version {
			return fmt.Errorf("tag %s is not the release version %s (internal/release.Version); set Version, commit, and tag that commit", *checkTag, release.Version)
		}
		fmt.Printf("tag %s matches release.Version; the image is %s\n", *checkTag, release.AuthImage)
		return nil
	}
	plats, err := ociimage.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		created = time.Unix(sec, 0).UTC()
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	idx, err := ociimage.BuildIndex(context.Background(), ociimage.Options{
		RepoRoot: root, Platforms: plats, Version: *version, Revision: *revision, Created: created,
	})
	if err != nil {
		return err
	}
	if err := ociimage.WriteLayout(*out, idx); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote OCI layout %s (index %s, %s)\n", *out, digest, *platforms)
	if *tarPath != "" {
		p, err := v1.ParsePlatform(*tarPlatform)
		if err != nil {
			return err
		}
		if err := ociimage.WriteDockerArchive(*tarPath, *ref, idx, *p); err != nil {
			return err
		}
		fmt.Printf("wrote docker-archive %s (%s, tagged %s)\n", *tarPath, *tarPlatform, *ref)
	}
	return nil
}
