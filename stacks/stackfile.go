package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"sigs.k8s.io/yaml"
)

// SecretPlaceholder stands for an encrypted value of a stack file when the program runs offline
// (tests, `ztedge render`): the value is never decrypted there, only its presence and secrecy matter.
const SecretPlaceholder = "offline-secret-placeholder"

// ReadStackFile reads the `config:` block of Pulumi.<stack>.yaml into a MapSource, encoding values
// the way the Pulumi CLI passes them to a program: strings as they are, numbers and booleans as
// text, lists and objects as JSON. `secure:` values become SecretPlaceholder, marked secret.
func ReadStackFile(dir, stack string) (MapSource, error) {
	path := filepath.Join(dir, "Pulumi."+stack+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return MapSource{}, fmt.Errorf("reading stack file: %w", err)
	}
	var doc struct {
		Config map[string]any `json:"config"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return MapSource{}, fmt.Errorf("%s: %w", path, err)
	}
	src := MapSource{Values: map[string]string{}, Secrets: map[string]bool{}}
	for k, v := range doc.Config {
		if m, ok := v.(map[string]any); ok && len(m) == 1 && m["secure"] != nil {
			src.Values[k] = SecretPlaceholder
			src.Secrets[k] = true
			continue
		}
		switch t := v.(type) {
		case string:
			src.Values[k] = t
		case bool:
			src.Values[k] = strconv.FormatBool(t)
		case float64:
			src.Values[k] = strconv.FormatFloat(t, 'f', -1, 64)
		default:
			j, err := json.Marshal(t)
			if err != nil {
				return MapSource{}, fmt.Errorf("%s: %s: %w", path, k, err)
			}
			src.Values[k] = string(j)
		}
	}
	return src, nil
}
