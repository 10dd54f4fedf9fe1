package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztedge/ztedge/stacks"
)

// TestUnknownKeysRefused: a misspelt ztedge: key, or a misspelt field inside an object-valued key,
// would be ignored and its default deployed (clientAuht: alb-verify runs alb-passthrough). Each is
// refused, naming the key or field and the nearest known one.
func TestUnknownKeysRefused(t *testing.T) {
	backend := func(extra string) string {
		return `[{"name":"orders","namespace":"orders","port":8443,"prefix":"/orders/"` + extra + `}]`
	}
	cases := []struct {
		name string
		edit map[string]string
		want []string // substrings of one problem line
	}{
		{"misspelt key", map[string]string{"ztedge:clientAuht": "alb-verify"},
			[]string{"ztedge:clientAuht", "not a ztedge setting", "did you mean clientAuth?"}},
		{"key with a stray letter", map[string]string{"ztedge:wafx": "block"},
			[]string{"ztedge:wafx", "not a ztedge setting", "did you mean waf?"}},
		{"key in the wrong case", map[string]string{"ztedge:ClientAuth": "alb-verify"},
			[]string{"ztedge:ClientAuth", "did you mean clientAuth?"}},
		{"key like nothing known", map[string]string{"ztedge:qqqqqqqqqqqq": "x"},
			[]string{"ztedge:qqqqqqqqqqqq", "not a ztedge setting"}},
		{"backend field", map[string]string{"ztedge:backends": backend(`,"prefx":"/b/"`)},
			[]string{"ztedge:backends", `unknown field "prefx" in backends[0]`, "did you mean prefix?"}},
		{"backend field in the wrong case", map[string]string{"ztedge:backends": `[{"Name":"orders","namespace":"orders","port":8443,"prefix":"/orders/"}]`},
			[]string{"ztedge:backends", `unknown field "Name" in backends[0]`, "did you mean name?"}},
		{"nested backend field", map[string]string{"ztedge:backends": backend(`,"rateLimit":{"requestsPerUnit":5,"unti":"second"}`)},
			[]string{"ztedge:backends", `unknown field "unti" in backends[0].rateLimit`, "did you mean unit?"}},
		{"trusted client field", map[string]string{"ztedge:trustedClients": `[{"name":"app","services":["/orders/"],"permisions":["read"]}]`},
			[]string{"ztedge:trustedClients", `unknown field "permisions" in trustedClients[0]`, "did you mean permissions?"}},
		{"signing key field", map[string]string{"ztedge:authSigningKeys": `[{"id":"k1","phase":"active"},{"id":"k2","phse":"next"}]`},
			[]string{"ztedge:authSigningKeys", `unknown field "phse" in authSigningKeys[1]`, "did you mean phase?"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stacks.Load(stackConfig(t, "local", tc.edit), "local")
			if err == nil {
				t.Fatalf("accepted %v", tc.edit)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if containsAll(line, tc.want) {
					return
				}
			}
			t.Errorf("no problem line contains all of %q:\n%v", tc.want, err)
		})
	}
}

// TestKnownKeysOfEveryStackAccepted: the check refuses only what the program does not read; the
// repository's stack files (and keys of other namespaces, like aws:profile) still load.
func TestKnownKeysOfEveryStackAccepted(t *testing.T) {
	for _, stack := range []string{"dev", "prod", "local"} {
		if _, err := stacks.Load(stackConfig(t, stack, map[string]string{"aws:profile": "ops"}), stack); err != nil {
			t.Errorf("%s: %v", stack, err)
		}
	}
}

// TestUnknownKeyRefusedBeforeTheCLI: preview and up refuse the stack file before the Pulumi CLI
// runs or any state is touched (Resolve is what they call first).
func TestUnknownKeyRefusedBeforeTheCLI(t *testing.T) {
	dir := t.TempDir()
	copyProject(t, dir, "local", "typo", "ztedge:clientAuht: alb-verify\n")
	_, err := stacks.AutoOptions{Dir: dir, LookupEnv: func(k string) (string, bool) {
		return map[string]string{stacks.EnvPassphrase: "x", stacks.EnvBackendURL: "file://" + dir}[k], k == stacks.EnvPassphrase || k == stacks.EnvBackendURL
	}}.Resolve("typo", true)
	var cfgErr *stacks.ConfigError
	if !errorsAs(err, &cfgErr) || !strings.Contains(err.Error(), "did you mean clientAuth?") {
		t.Fatalf("want a configuration error naming clientAuth, got %v", err)
	}
}

func containsAll(s string, subs []string) bool {
	for _, w := range subs {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// copyProject writes Pulumi.yaml and stack from's file as Pulumi.<to>.yaml into dir, with extra
// (YAML lines) added at the top of its config block.
func copyProject(t *testing.T, dir, from, to, extra string) {
	t.Helper()
	project, err := os.ReadFile(filepath.Join(repoRoot(t), "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stack, err := os.ReadFile(filepath.Join(repoRoot(t), "Pulumi."+from+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(stack), "\nconfig:\n", "\nconfig:\n  "+extra, 1)
	if edited == string(stack) {
		t.Fatalf("Pulumi.%s.yaml has no config: block", from)
	}
	for name, b := range map[string][]byte{"Pulumi.yaml": project, "Pulumi." + to + ".yaml": []byte(edited)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
