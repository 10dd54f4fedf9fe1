package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ztedge/ztedge/internal/release"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	buildOnce   sync.Once
	builtLayout string
	buildErr    error
)

// layoutDir builds the image once per test binary (two cross-compiles) and writes it as an OCI
// layout, as `make jwt-auth-oci` does, then reads it back from disk.
func layoutDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds jwt-auth for two platforms")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jwt-auth-oci-test-")
		if err != nil {
			buildErr = err
			return
		}
		idx, err := BuildIndex(context.Background(), Options{RepoRoot: repoRoot(t), Version: release.Version})
		if err != nil {
			buildErr = err
			return
		}
		builtLayout, buildErr = filepath.Join(dir, "oci"), WriteLayout(filepath.Join(dir, "oci"), idx)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtLayout
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtLayout != "" {
		os.RemoveAll(filepath.Dir(builtLayout))
	}
	os.Exit(code)
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// files reads an image's flattened filesystem.
func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.Trim(h.Name, "/")] = entry{h, b}
	}
}

// The layout holds one OCI index with an image for each of linux/amd64 and linux/arm64.
func TestIndexHasBothPlatforms(t *testing.T) {
	idx, err := layout.ImageIndexFromPath(layoutDir(t))
	if err != nil {
		t.Fatal(err)
	}
	// The layout's index.json is the multi-platform image index itself (what crane push --index pushes).
	if mt, err := idx.MediaType(); err != nil || mt != types.OCIImageIndex {
		t.Errorf("index.json media type %s, %v; want %s", mt, err, types.OCIImageIndex)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil {
			t.Errorf("manifest %s: media type %s, platform %v", d.Digest, d.MediaType, d.Platform)
			continue
		}
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", got)
	}
}

func images(t *testing.T) map[string]v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(layoutDir(t))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Image{}
	for _, p := range Platforms {
		img, err := PlatformImage(idx, p)
		if err != nil {
			t.Fatal(err)
		}
		out[p.Architecture] = img
	}
	return out
}

// Each image: non-root numeric user, the binary as entrypoint with no shell, a static binary for
// its architecture with the fallback CA roots linked in, and a filesystem that works read-only.
func TestImageContents(t *testing.T) {
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for arch, img := range images(t) {
		t.Run(arch, func(t *testing.T) {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != arch {
				t.Errorf("config platform %s/%s", cf.OS, cf.Architecture)
			}
			c := cf.Config
			uid, gid, ok := strings.Cut(c.User, ":")
			u, errU := strconv.Atoi(uid)
			g, errG := strconv.Atoi(gid)
			if !ok || errU != nil || errG != nil || u == 0 || g == 0 {
				t.Errorf("User %q: want numeric non-root uid:gid (runAsNonRoot can only check a numeric user)", c.User)
			}
			if !slices.Equal(c.Entrypoint, []string{"/jwt-auth"}) || len(c.Cmd) != 0 {
				t.Errorf("Entrypoint %q Cmd %q, want [/jwt-auth] and no Cmd", c.Entrypoint, c.Cmd)
			}
			if !slices.Contains(c.Env, "JWT_AUTH_SIGNING_KEYS=/etc/jwt-auth/keys") {
				t.Errorf("Env %q lacks the signing-keys path the Deployment mounts", c.Env)
			}
			if _, ok := c.ExposedPorts["3000/tcp"]; !ok {
				t.Errorf("ExposedPorts %v", c.ExposedPorts)
			}
			if c.Labels["org.opencontainers.image.version"] != release.Version {
				t.Errorf("version label %q, want %s", c.Labels["org.opencontainers.image.version"], release.Version)
			}

			fs := files(t, img)
			var names []string
			for n := range fs {
				names = append(names, n)
			}
			slices.Sort(names)
			want := []string{"/etc", "/etc/group", "/etc/passwd", "/home", "/home/nonroot", "/jwt-auth", "/tmp"}
			if !slices.Equal(names, want) {
				t.Errorf("files %v, want exactly %v (no shell, no package manager)", names, want)
			}
			if !strings.Contains(string(fs["/etc/passwd"].data), "nonroot:x:"+uid+":"+gid+":") || !strings.Contains(string(fs["/etc/group"].data), "nonroot:x:"+gid+":") {
				t.Errorf("passwd/group do not name the image user %s", c.User)
			}
			// Read-only root: only /tmp and the user's home are writable by the user; nothing else is.
			for n, e := range fs {
				writable := e.hdr.Uid == u && e.hdr.Mode&0o200 != 0 || e.hdr.Mode&0o002 != 0
				if writable != (n == "/tmp" || n == "/home/nonroot") {
					t.Errorf("%s: uid %d mode %o; writable by the user: %v", n, e.hdr.Uid, e.hdr.Mode, writable)
				}
			}
			if fs["/tmp"].hdr.Mode&0o7777 != 0o1777 {
				t.Errorf("/tmp mode %o, want 1777", fs["/tmp"].hdr.Mode)
			}

			bin := fs["/jwt-auth"]
			if bin.hdr.Mode&0o111 == 0 || bin.hdr.Uid != 0 {
				t.Errorf("/jwt-auth mode %o uid %d", bin.hdr.Mode, bin.hdr.Uid)
			}
			f, err := elf.NewFile(bytes.NewReader(bin.data))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != machines[arch] || f.Class != elf.ELFCLASS64 {
				t.Errorf("ELF machine %v class %v, want %v", f.Machine, f.Class, machines[arch])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("program header %v: the binary is dynamically linked", p.Type)
				}
			}
			if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
				t.Errorf("DT_NEEDED %v", libs)
			}
			bi, err := buildinfo.Read(bytes.NewReader(bin.data))
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			if settings["CGO_ENABLED"] != "0" || settings["GOARCH"] != arch || settings["-trimpath"] != "true" {
				t.Errorf("build settings %v", settings)
			}
			roots := false
			for _, d := range bi.Deps {
				roots = roots || d.Path == "golang.org/x/crypto/x509roots/fallback"
			}
			if !roots {
				t.Error("golang.org/x/crypto/x509roots/fallback is not linked in: HTTPS to an OIDC issuer would fail in a scratch image")
			}
		})
	}
}

// The amd64 entrypoint, taken from the layer, runs here without any file of the image (static,
// no loader, no libc) and prints its usage.
func TestEntrypointRuns(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("runs the linux/amd64 binary; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin := files(t, images(t)["amd64"])["/jwt-auth"]
	path := filepath.Join(t.TempDir(), "jwt-auth")
	if err := os.WriteFile(path, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--help")
	cmd.Env = []string{} // nothing from the test's environment
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jwt-auth --help: %v\n%s", err, out)
	}
	for _, want := range []string{"Usage of jwt-auth", "-signing-keys", "-oidc-jwks-url"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help output lacks %q:\n%s", want, out)
		}
	}
}

// The docker-archive for kind/k3d holds the same image, tagged.
func TestDockerArchive(t *testing.T) {
	img := images(t)["amd64"]
	idx, err := layout.ImageIndexFromPath(layoutDir(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwt-auth.tar")
	if err := WriteDockerArchive(path, release.AuthImage, idx, v1.Platform{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Fatal(err)
	}
	got, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	if name, _ := got.ConfigName(); name != want {
		t.Errorf("archive config %s, want the layout's amd64 image config %s", name, want)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{release.AuthImage}) {
		t.Errorf("archive manifest %+v, want tag %s", m, release.AuthImage)
	}
}

// Two builds give the same index digest: what CI checks is what the release pushes.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds jwt-auth twice")
	}
	idx, err := layout.ImageIndexFromPath(layoutDir(t))
	if err != nil {
		t.Fatal(err)
	}
	first, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	again, err := BuildIndex(context.Background(), Options{RepoRoot: repoRoot(t), Version: release.Version})
	if err != nil {
		t.Fatal(err)
	}
	d, err := again.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d != first {
		t.Errorf("second build %s, first %s", d, first)
	}
}

// cmd/jwt-auth/Dockerfile builds the same image for people with Docker: same flags, same root
// filesystem, same user, entrypoint and environment, no base image.
func TestDockerfileMatchesRecipe(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd/jwt-auth/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", `-ldflags="` + LDFlags + `"`,
		"COPY " + RootFS + "/ /rootfs/",
		"install -d -m 1777 /rootfs/tmp",
		"install -d -m 0700 -o " + strconv.Itoa(UID) + " -g " + strconv.Itoa(GID) + " /rootfs/home/nonroot",
		"FROM scratch", "USER " + User, `ENTRYPOINT ["` + Entrypoint + `"]`,
		"ENV JWT_AUTH_SIGNING_KEYS=" + SigningKeysDir, "EXPOSE " + strings.TrimSuffix(Port, "/tcp"),
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q (keep it in step with internal/ociimage)", want)
		}
	}
}

// jwt-auth writes no files (the Deployment runs it with readOnlyRootFilesystem and only /tmp would
// be writable): none of its non-test sources calls a file-writing function of package os.
func TestJWTAuthWritesNoFiles(t *testing.T) {
	writers := map[string]bool{"Create": true, "CreateTemp": true, "WriteFile": true, "OpenFile": true, "Mkdir": true, "MkdirAll": true,
		"MkdirTemp": true, "Rename": true, "Remove": true, "RemoveAll": true, "Chmod": true, "Chown": true, "Symlink": true, "Link": true, "Truncate": true}
	for _, dir := range []string{"cmd/jwt-auth", "internal/jwtauth"} {
		paths, _ := filepath.Glob(filepath.Join(repoRoot(t), dir, "*.go"))
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && writers[sel.Sel.Name] {
						t.Errorf("%s calls os.%s: jwt-auth runs on a read-only root filesystem", filepath.Base(p), sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
}
