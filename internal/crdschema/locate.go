package crdschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

const (
	// EmissaryModule is the Go module that ships the generated Emissary CRDs.
	EmissaryModule = "github.com/emissary-ingress/emissary/v3"
	// EmissaryVersion is the Emissary release whose CRDs LoadEmissary uses.
	EmissaryVersion = "v3.10.0"
	// EmissaryCRDsFile is the path, inside EmissaryModule, of the CRD
	// manifest that Emissary's release applies to clusters (fix-crds target
	// apiserver-kubectl). Its v3alpha1 schemas are the same as those in
	// pkg/api/getambassador.io/crds.yaml, but that file is the
	// "internal-validator" variant whose v1 and v2 schemas use oneOf unions,
	// are not structural and would be refused by an API server; see
	// EmissaryInternalCRDsFile.
	EmissaryCRDsFile = "manifests/emissary/emissary-crds.yaml.in"
	// EmissaryInternalCRDsFile is Emissary's internal-validator CRD file.
	EmissaryInternalCRDsFile = "pkg/api/getambassador.io/crds.yaml"
	// EnvEmissaryCRDs names an environment variable that, when set, is the
	// path of the Emissary CRD file to use instead of the module cache.
	EnvEmissaryCRDs = "ZTEDGE_EMISSARY_CRDS"
)

// EmissaryCRDPath returns the path of Emissary's crds.yaml: the file named
// by $ZTEDGE_EMISSARY_CRDS if that is set, else the copy in the Go module
// cache, downloading the module with `go mod download` if it is not there
// yet.
func EmissaryCRDPath() (string, error) {
	if p := os.Getenv(EnvEmissaryCRDs); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvEmissaryCRDs, p, err)
		}
		return p, nil
	}
	dir, err := emissaryModuleDir()
	if err != nil {
		return "", fmt.Errorf("locating Emissary CRDs (set %s to a CRD file to skip this): %w", EnvEmissaryCRDs, err)
	}
	p := filepath.Join(dir, filepath.FromSlash(EmissaryCRDsFile))
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

var (
	moduleDirMu  sync.Mutex
	moduleDirEnv string // GOMODCACHE it was found with
	moduleDir    string
)

// emissaryModuleDir returns the extracted module directory in the module
// cache, downloading the module if needed. A directory found is remembered
// for the process (as long as $GOMODCACHE does not change).
func emissaryModuleDir() (string, error) {
	moduleDirMu.Lock()
	defer moduleDirMu.Unlock()
	env := os.Getenv("GOMODCACHE")
	if moduleDir != "" && moduleDirEnv == env {
		return moduleDir, nil
	}
	dir, err := findEmissaryModuleDir()
	if err != nil {
		return "", err
	}
	moduleDir, moduleDirEnv = dir, env
	return dir, nil
}

func findEmissaryModuleDir() (string, error) {
	out, err := goCmd("env", "GOMODCACHE")
	if err != nil {
		return "", err
	}
	modcache := strings.TrimSpace(string(out))
	if modcache != "" {
		// The module path is all lower case, so its cache path needs no
		// case-escaping.
		dir := filepath.Join(modcache, filepath.FromSlash(EmissaryModule)+"@"+EmissaryVersion)
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(EmissaryCRDsFile))); err == nil {
			return dir, nil
		}
	}
	out, err = goCmd("mod", "download", "-json", EmissaryModule+"@"+EmissaryVersion)
	var info struct {
		Dir   string
		Error string
	}
	if jerr := json.Unmarshal(out, &info); jerr != nil {
		if err != nil {
			return "", err
		}
		return "", fmt.Errorf("go mod download: unexpected output %q: %w", out, jerr)
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", EmissaryModule, EmissaryVersion, info.Error)
	}
	if err != nil {
		return "", err
	}
	if info.Dir == "" {
		return "", errors.New("go mod download reported no Dir")
	}
	return info.Dir, nil
}

// goCmd runs the go command outside any module (in the temp dir, with
// GOWORK=off), so that it cannot touch the caller's go.mod or go.sum.
func goCmd(args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
