// Package release holds the version of ztedge's own release artifacts, in one place.
//
// The release workflow (.github/workflows/release.yml) runs on a tag v*: it refuses a tag that is not
// Version (cmd/imagebuild -check-tag), builds the jwt-auth image with internal/ociimage, and pushes it
// as AuthImage. The ztedge:authImage default (stacks/keys.go) is AuthImage, so a program built from
// the tagged commit deploys exactly the image its release published.
//
// To release: set Version to the next version, commit (Pulumi.yaml and the README config table are
// regenerated with `go test ./tests -run TestConfigDocs -update`), tag that commit with Version, push
// the tag.
package release

const (
	// Version of the next (or current) release, as its git tag.
	Version = "v0.1.0"
	// AuthImageRepository is where the release publishes the jwt-auth image.
	AuthImageRepository = "ghcr.io/ztedge/jwt-auth"
	// AuthImage is the jwt-auth image of this release, the ztedge:authImage default.
	AuthImage = AuthImageRepository + ":" + Version
)
