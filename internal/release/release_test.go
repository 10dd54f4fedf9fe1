package release_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/internal/release"
	"github.com/ztedge/ztedge/stacks"
)

// The ztedge:authImage default is the image the release workflow publishes for Version.
func TestAuthImageDefaultIsTheReleasedImage(t *testing.T) {
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(release.Version) {
		t.Errorf("Version %q is not vMAJOR.MINOR.PATCH (the release tags are v*)", release.Version)
	}
	var def any
	for _, k := range stacks.Keys {
		if k.Name == "authImage" {
			def = k.Default
		}
	}
	if def != release.AuthImage || release.AuthImage != "ghcr.io/ztedge/jwt-auth:"+release.Version {
		t.Errorf("authImage default %v, release.AuthImage %s", def, release.AuthImage)
	}
	b, err := os.ReadFile("../../.github/workflows/release.yml")
	if err != nil {
		t.Fatal(err)
	}
	wf := string(b)
	for _, want := range []string{
		`tags: ["v*"]`,
		"IMAGE: " + release.AuthImageRepository,
		"TAG: ${{ github.ref_name }}",
		`go run ./cmd/imagebuild -check-tag "$TAG"`,         // refuses a tag that is not Version
		`crane push --index out/jwt-auth-oci "$IMAGE:$TAG"`, // pushes as IMAGE:TAG = AuthImage
		"go run ./cmd/imagebuild -out out/jwt-auth-oci",     // the layout CI's tests build
		`cosign sign --yes "$IMAGE@$DIGEST"`,                // keyless signature
		`cosign attest --yes --type spdxjson`,               // SBOM attestation
	} {
		if !strings.Contains(wf, want) {
			t.Errorf("release.yml lacks %q", want)
		}
	}
}
