package render

import (
	"fmt"
	"sort"
	"time"

	"github.com/ztedge/ztedge/internal/mockengine"
	"github.com/ztedge/ztedge/stacks"
)

// Offline runs stacks.Program for the stack file Pulumi.<stack>.yaml in root under the mock engine:
// no cloud, no Pulumi CLI, secrets never decrypted (stacks.SecretPlaceholder stands for them).
// An invalid configuration is returned as the *stacks.ConfigError that names each key.
func Offline(root, stack string, timeout time.Duration) ([]*mockengine.Resource, error) {
	src, err := stacks.ReadStackFile(root, stack)
	if err != nil {
		return nil, err
	}
	// Validate before running, so the caller gets the configuration error itself rather than the
	// engine's wrapping of it.
	if _, err := stacks.Load(src, stack); err != nil {
		return nil, err
	}
	secretKeys := make([]string, 0, len(src.Secrets))
	for k := range src.Secrets {
		secretKeys = append(secretKeys, k)
	}
	sort.Strings(secretKeys)
	eng := mockengine.New(stacks.Namespace, stack, src.Values["aws:region"])
	done := make(chan error, 1)
	go func() { done <- eng.Run(stacks.Program, src.Values, secretKeys) }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("stack %s under the mock engine: %w", stack, err)
		}
		return eng.Resources(), nil
	case <-time.After(timeout):
		// A resource reference the mock cannot resolve makes the run wait forever.
		return nil, fmt.Errorf("stack %s: the program did not finish under the mock engine in %s", stack, timeout)
	}
}
