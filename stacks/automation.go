package stacks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"sigs.k8s.io/yaml"
)

// The Automation API half of this package drives a stack from Go, the way `pulumi preview/up/
// destroy/refresh/stack output` would, with stacks.Program running in this process (an inline
// program). It needs the Pulumi CLI on PATH: the SDK runs it for every operation. `ztedge render`
// (internal/render) is the offline counterpart that needs neither the CLI nor a cloud.

// Environment variables the Automation API reads.
const (
	EnvBackendURL     = "PULUMI_BACKEND_URL"
	EnvPassphrase     = "PULUMI_CONFIG_PASSPHRASE"
	EnvPassphraseFile = "PULUMI_CONFIG_PASSPHRASE_FILE"
)

// DefaultStateDir is the file backend's directory under the project root when PULUMI_BACKEND_URL
// is not set: state stays beside the code it describes (and is git-ignored).
const DefaultStateDir = ".pulumi-state"

// AutoOptions say where a stack lives and where its progress goes. The zero value works from a
// directory inside the repository with the Pulumi CLI on PATH.
type AutoOptions struct {
	// Dir holds Pulumi.yaml and Pulumi.<stack>.yaml. Default: the nearest directory upward from the
	// working directory that has a Pulumi.yaml.
	Dir string
	// Progress receives Pulumi's own progress text (what `pulumi up` prints). Nil: none.
	Progress io.Writer
	// OnEvent is called with every engine event, in order, from one goroutine (a progress display).
	OnEvent func(events.EngineEvent)
	// Diff shows property-level diffs in Progress (preview and up).
	Diff bool
	// ExpectNoChanges makes preview and up fail when they find anything to change (drift checks).
	ExpectNoChanges bool
	// LookupEnv reads the environment; nil means os.LookupEnv (tests replace it).
	LookupEnv func(string) (string, bool)
	// Command is the Pulumi CLI; nil means `pulumi` from PATH, else the pinned version in the
	// Pulumi home, else what InstallCLI decides (tests pass a fake).
	Command auto.PulumiCommand
	// InstallCLI says whether and how to install the pinned Pulumi CLI when it is missing.
	InstallCLI CLIInstall
	// Refresh reads the real state of every resource first (preview, up: Pulumi's --refresh), so
	// drift made outside Pulumi shows as a change, and up undoes it.
	Refresh bool
	// Repair resolves pending operations of an interrupted run before up (stacks/pending.go).
	Repair bool
	// Replace are URNs to replace even though nothing changed (Pulumi's --replace): a
	// compromised key, or a rehearsal of what a replacement does (preview, up).
	Replace []string
	// Notices receives what ztedge itself says (pending operations, repairs). Nil: discarded.
	Notices io.Writer
	// Interrupts relays the user's Ctrl-C to the CLI (stacks/interrupt.go); nil: none.
	Interrupts *Interrupts
}

// Preview shows what Up would change, without changing anything.
func Preview(ctx context.Context, stack string, o AutoOptions) (auto.PreviewResult, error) {
	s, err := o.stack(ctx, stack, runsProgram)
	if err != nil {
		return auto.PreviewResult{}, err
	}
	d, err := o.warnPending(ctx, s)
	if err != nil {
		return auto.PreviewResult{}, wrap("preview", stack, err)
	}
	if err := o.checkEngine(stack, d); err != nil {
		return auto.PreviewResult{}, err
	}
	opts := []optpreview.Option{}
	if o.Refresh {
		opts = append(opts, optpreview.Refresh())
	}
	if len(o.Replace) > 0 {
		opts = append(opts, optpreview.Replace(o.Replace))
	}
	if o.Progress != nil {
		opts = append(opts, optpreview.ProgressStreams(o.Progress))
	}
	if o.Diff {
		opts = append(opts, optpreview.Diff())
	}
	if o.ExpectNoChanges {
		opts = append(opts, optpreview.ExpectNoChanges())
	}
	var res auto.PreviewResult
	err = o.streamEvents(func(ch chan<- events.EngineEvent) error {
		res, err = s.Preview(ctx, append(opts, optpreview.EventStreams(ch))...)
		return err
	})
	return res, wrap("preview", stack, err)
}

// Up creates or updates the stack's resources.
func Up(ctx context.Context, stack string, o AutoOptions) (auto.UpResult, error) {
	// A dead run's lock first (its state can be repaired only once it is released), and a
	// cut-short checkpoint before the CLI reads it.
	if err := o.checkLock(stack); err != nil {
		return auto.UpResult{}, err
	}
	if o.Repair {
		if err := o.restoreCheckpoint(stack); err != nil {
			return auto.UpResult{}, wrap("repair", stack, err)
		}
	}
	s, err := o.stack(ctx, stack, runsProgram)
	if err != nil {
		return auto.UpResult{}, err
	}
	d, err := o.resolvePending(ctx, stack, s)
	if err != nil {
		return auto.UpResult{}, err
	}
	if err := o.checkEngine(stack, d); err != nil {
		return auto.UpResult{}, err
	}
	opts := []optup.Option{}
	if o.Refresh {
		opts = append(opts, optup.Refresh())
	}
	if len(o.Replace) > 0 {
		opts = append(opts, optup.Replace(o.Replace))
	}
	if o.Progress != nil {
		opts = append(opts, optup.ProgressStreams(o.Progress))
	}
	if o.Diff {
		opts = append(opts, optup.Diff())
	}
	if o.ExpectNoChanges {
		opts = append(opts, optup.ExpectNoChanges())
	}
	var res auto.UpResult
	err = o.streamEvents(func(ch chan<- events.EngineEvent) error {
		res, err = s.Up(ctx, append(opts, optup.EventStreams(ch))...)
		return err
	})
	return res, wrap("up", stack, err)
}

// Destroy deletes every resource of the stack (the stack itself and its history stay).
func Destroy(ctx context.Context, stack string, o AutoOptions) (auto.DestroyResult, error) {
	s, err := o.stack(ctx, stack, callsProviders)
	if err != nil {
		return auto.DestroyResult{}, err
	}
	opts := []optdestroy.Option{}
	if o.Progress != nil {
		opts = append(opts, optdestroy.ProgressStreams(o.Progress))
	}
	var res auto.DestroyResult
	err = o.streamEvents(func(ch chan<- events.EngineEvent) error {
		res, err = s.Destroy(ctx, append(opts, optdestroy.EventStreams(ch))...)
		return err
	})
	return res, wrap("destroy", stack, err)
}

// Refresh reads the real state of every resource into the stack's state.
func Refresh(ctx context.Context, stack string, o AutoOptions) (auto.RefreshResult, error) {
	s, err := o.stack(ctx, stack, callsProviders)
	if err != nil {
		return auto.RefreshResult{}, err
	}
	opts := []optrefresh.Option{}
	if o.Progress != nil {
		opts = append(opts, optrefresh.ProgressStreams(o.Progress))
	}
	var res auto.RefreshResult
	err = o.streamEvents(func(ch chan<- events.EngineEvent) error {
		res, err = s.Refresh(ctx, append(opts, optrefresh.EventStreams(ch))...)
		return err
	})
	return res, wrap("refresh", stack, err)
}

// Outputs returns the stack's outputs; secret ones are decrypted and marked Secret.
func Outputs(ctx context.Context, stack string, o AutoOptions) (auto.OutputMap, error) {
	s, err := o.stack(ctx, stack, readsState)
	if err != nil {
		return nil, err
	}
	out, err := s.Outputs(ctx)
	return out, wrap("reading the outputs of", stack, err)
}

// wrap names the operation and stack, and shortens the CLI's error to what failed (the whole
// output was the progress display's to show).
func wrap(op, stack string, err error) error {
	if err == nil {
		return nil
	}
	err = lockError(stack, err)
	var locked *LockedError
	if errors.As(err, &locked) {
		return err
	}
	return fmt.Errorf("%s stack %s: %w", op, stack, summarize(err))
}

func (o AutoOptions) notices() io.Writer {
	if o.Notices == nil {
		return io.Discard
	}
	return o.Notices
}

// warnPending names the stack's pending operations before a preview (which changes nothing, so
// it runs anyway: it shows them as creates), and returns the state it read.
func (o AutoOptions) warnPending(ctx context.Context, s auto.Stack) (*deployment, error) {
	d, _, err := exportDeployment(ctx, s)
	if truncatedCheckpoint(err) {
		return nil, ErrTruncatedCheckpoint
	}
	if err != nil {
		return nil, err
	}
	if ops := d.pendingOps(); len(ops) > 0 {
		fmt.Fprintf(o.notices(), "warning: %v\n", &PendingError{Stack: s.Name(), Ops: ops})
	}
	return d, nil
}

// checkLock fails naming the stack's locks on a file backend (other backends: the CLI does).
func (o AutoOptions) checkLock(stack string) error {
	st, err := o.Resolve(stack, false)
	if err != nil {
		return err
	}
	if locks, _ := fileLocks(st.BackendURL, stack); len(locks) > 0 {
		return &LockedError{Stack: stack, Locks: strings.Join(locks, "\n")}
	}
	return nil
}

// restoreCheckpoint puts back the previous checkpoint of a file backend's cut-short state file.
func (o AutoOptions) restoreCheckpoint(stack string) error {
	st, err := o.Resolve(stack, false)
	if err != nil {
		return err
	}
	did, err := restoreCheckpoint(st.BackendURL, stack)
	if did != "" {
		fmt.Fprintln(o.notices(), did)
	}
	return err
}

// resolvePending refuses an up over pending operations (it would fail "already exists", or
// forget an object), or with Repair resolves them first; it returns the state up starts from.
func (o AutoOptions) resolvePending(ctx context.Context, stack string, s auto.Stack) (*deployment, error) {
	if o.Repair {
		if err := repair(ctx, s, o.notices()); err != nil {
			return nil, wrap("repair", stack, err)
		}
	}
	d, _, err := exportDeployment(ctx, s)
	if truncatedCheckpoint(err) {
		return nil, wrap("up", stack, ErrTruncatedCheckpoint)
	}
	if err != nil {
		return nil, wrap("up", stack, err)
	}
	if ops := d.pendingOps(); len(ops) > 0 {
		return nil, &PendingError{Stack: stack, Ops: ops}
	}
	return d, nil
}

// streamEvents runs op with an event channel whose events go to OnEvent. The SDK closes the channel
// only when the CLI connected to it, so the forwarder stops when op returns (the SDK has stopped
// its event server by then, so no event is lost).
func (o AutoOptions) streamEvents(op func(chan<- events.EngineEvent) error) error {
	ch := make(chan events.EngineEvent)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					return
				}
				if o.OnEvent != nil {
					o.OnEvent(ev)
				}
			case <-stop:
				return
			}
		}
	}()
	err := op(ch)
	close(stop)
	<-done
	return err
}

// Settings is what a workspace is made of, resolved from AutoOptions and the environment:
// exported so that callers (and tests) can see the choices without running the CLI.
type Settings struct {
	Dir        string            // project root (Pulumi.yaml)
	Stack      string            // stack name
	StackFile  string            // Pulumi.<stack>.yaml
	BackendURL string            // where state lives
	Env        map[string]string // extra environment of every CLI run
}

// SetupError is a problem found before the Pulumi CLI runs (no project or stack file, no
// passphrase): the caller can fix it without any cloud round trip.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Resolve checks everything that can be checked before the Pulumi CLI runs: the project and stack
// files, the backend, the secrets passphrase, and (validate) the stack's configuration.
func (o AutoOptions) Resolve(stack string, validate bool) (*Settings, error) {
	st, err := o.resolve(stack, validate)
	var cfgErr *ConfigError
	if err != nil && !errors.As(err, &cfgErr) {
		return nil, &SetupError{err}
	}
	return st, err
}

// lookupEnv is o.LookupEnv, or the process environment.
func (o AutoOptions) lookupEnv() func(string) (string, bool) {
	if o.LookupEnv == nil {
		return os.LookupEnv
	}
	return o.LookupEnv
}

func (o AutoOptions) resolve(stack string, validate bool) (*Settings, error) {
	lookup := o.lookupEnv()
	dir := o.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if dir, err = FindProjectDir(wd); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err != nil {
		return nil, fmt.Errorf("%s has no Pulumi.yaml: run from the ztedge repository or pass its path", dir)
	}
	if !stackNameRE.MatchString(stack) {
		return nil, fmt.Errorf("stack name %q: use letters, digits, '-', '_' or '.' (e.g. dev, prod, local)", stack)
	}
	stackFile := filepath.Join(dir, "Pulumi."+stack+".yaml")
	secretsProvider, err := readSecretsProvider(stackFile)
	if err != nil {
		return nil, err
	}
	if validate {
		src, err := ReadStackFile(dir, stack)
		if err != nil {
			return nil, err
		}
		if _, err := Load(src, stack); err != nil {
			return nil, err
		}
	}

	backend, _ := lookup(EnvBackendURL)
	if backend == "" {
		state := filepath.Join(dir, DefaultStateDir)
		// The file backend does not create its directory.
		if err := os.MkdirAll(state, 0o700); err != nil {
			return nil, fmt.Errorf("creating the state directory: %w", err)
		}
		backend = "file://" + filepath.ToSlash(state)
	}
	if err := checkPassphrase(lookup, backend, secretsProvider); err != nil {
		return nil, err
	}
	return &Settings{
		Dir: dir, Stack: stack, StackFile: stackFile, BackendURL: backend,
		// The backend goes to the CLI explicitly, so that a `pulumi login` elsewhere on the machine
		// cannot send this project's state somewhere else.
		Env: map[string]string{EnvBackendURL: backend, "PULUMI_SKIP_UPDATE_CHECK": "true"},
	}, nil
}

var stackNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// readSecretsProvider returns the stack file's secretsprovider ("" when it uses the default, a
// passphrase on self-managed backends). The stack file must exist: it holds the configuration.
func readSecretsProvider(stackFile string) (string, error) {
	b, err := os.ReadFile(stackFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist: every stack needs its configuration file (copy Pulumi.dev.yaml and edit it)", filepath.Base(stackFile))
	}
	if err != nil {
		return "", err
	}
	var doc struct {
		SecretsProvider string `json:"secretsprovider"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("%s: %w", stackFile, err)
	}
	return doc.SecretsProvider, nil
}

// checkPassphrase fails early, with what to do, when the CLI would need a passphrase it cannot get
// (it would otherwise prompt, which hangs in CI, or fail with a less helpful message).
func checkPassphrase(lookup func(string) (string, bool), backend, secretsProvider string) error {
	if strings.HasPrefix(backend, "https://") || (secretsProvider != "" && secretsProvider != "passphrase") {
		return nil // Pulumi Cloud or a KMS-style provider: no passphrase involved
	}
	if f, _ := lookup(EnvPassphraseFile); f != "" {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s=%s: %w", EnvPassphraseFile, f, err)
		}
		return nil
	}
	// An empty PULUMI_CONFIG_PASSPHRASE is a valid (if weak) passphrase, so "set" is what counts.
	if _, set := lookup(EnvPassphrase); set {
		return nil
	}
	return fmt.Errorf("%s or %s must be set: the stack's secrets (private keys, tokens) are encrypted with a passphrase "+
		"on the %s backend; export the passphrase (keep it in your password manager or CI secrets) and run again", EnvPassphrase, EnvPassphraseFile, backendKind(backend))
}

func backendKind(url string) string {
	if i := strings.Index(url, "://"); i > 0 {
		return url[:i+3] + "…"
	}
	return url
}

// FindProjectDir returns the nearest directory from start upward that has a Pulumi.yaml.
func FindProjectDir(start string) (string, error) {
	for dir := start; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no Pulumi.yaml in %s or above: run from the ztedge repository (or pass --dir)", start)
		}
	}
}

// operation is what a stack operation needs before it starts.
type operation int

const (
	readsState     operation = iota // outputs: the CLI and the backend only
	callsProviders                  // destroy, refresh: the providers too
	runsProgram                     // preview, up: a valid configuration as well
)

// stack opens the named stack (creating it in the backend on first use) with stacks.Program inline
// and the project directory as the workspace, so the CLI reads Pulumi.yaml and Pulumi.<stack>.yaml
// exactly as `pulumi up` in that directory would.
func (o AutoOptions) stack(ctx context.Context, stack string, op operation) (auto.Stack, error) {
	st, err := o.Resolve(stack, op == runsProgram)
	if err != nil {
		return auto.Stack{}, err
	}
	cmd := o.Command
	if cmd == nil {
		if cmd, err = o.InstallCLI.findPulumiCLI(ctx, o.lookupEnv(), o.Interrupts); err != nil {
			return auto.Stack{}, err
		}
	}
	opts := []auto.LocalWorkspaceOption{auto.WorkDir(st.Dir), auto.EnvVars(st.Env), auto.Pulumi(cmd)}
	s, err := auto.UpsertStackInlineSource(ctx, stack, Namespace, Program, opts...)
	if err != nil && auto.IsCreateStack409Error(err) {
		// Another run created the stack between this one's lookup and its create: use it (that
		// run's lock then says who holds the stack).
		s, err = auto.SelectStackInlineSource(ctx, stack, Namespace, Program, opts...)
	}
	if err != nil {
		return auto.Stack{}, fmt.Errorf("opening stack %s on %s: %w", stack, st.BackendURL, err)
	}
	if op != readsState {
		if err := installProviders(ctx, s.Workspace(), st); err != nil {
			return auto.Stack{}, err
		}
	}
	return s, nil
}

// installProviders installs the providers this stack's program registers resources with (an
// inline program tells the engine of none, unlike `pulumi up` with a compiled program), at the
// versions the program was built against, and only those not installed yet: a local stack needs
// no AWS provider, and an operation on a machine that has the plugins makes no download.
func installProviders(ctx context.Context, ws auto.Workspace, st *Settings) error {
	src, err := ReadStackFile(st.Dir, st.Stack)
	if err != nil {
		return err
	}
	wanted, err := RequiredPlugins(st.Dir)
	if err != nil {
		return err
	}
	installed, err := ws.ListPlugins(ctx)
	if err != nil {
		return fmt.Errorf("listing the installed Pulumi plugins: %w", err)
	}
	have := map[Plugin]bool{}
	for _, p := range installed {
		if p.Kind == "resource" && p.Version != nil {
			have[Plugin{Name: p.Name, Version: "v" + p.Version.String()}] = true
		}
	}
	for _, p := range pluginsFor(ProvidersFor(PlatformOf(src)), wanted) {
		if have[p] {
			continue
		}
		if err := ws.InstallPlugin(ctx, p.Name, p.Version); err != nil {
			return fmt.Errorf("installing the %s provider %s: %w", p.Name, p.Version, err)
		}
	}
	return nil
}

// ProvidersFor lists the provider packages whose resources the program registers on a platform.
// A test renders every stack and compares this list with what the program registered.
func ProvidersFor(platform string) []string {
	if platform == PlatformLocal {
		return []string{"kubernetes", "tls"}
	}
	return []string{"aws", "eks", "kubernetes", "tls"}
}

// PlatformOf is the stack's ztedge:platform as set, or its default; Load checks the value.
func PlatformOf(src Source) string {
	r := &reader{src: src, read: map[string]bool{}}
	_, v, _ := r.raw("platform")
	return v
}

// pluginsFor picks the named providers out of those the program is built with.
func pluginsFor(names []string, built []Plugin) []Plugin {
	var out []Plugin
	for _, p := range built {
		if slices.Contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// Plugin is a Pulumi resource provider the program uses.
type Plugin struct{ Name, Version string }

var providerModuleRE = regexp.MustCompile(`^github\.com/pulumi/pulumi-([a-z0-9-]+)/sdk(/v\d+)?$`)

// RequiredPlugins lists the providers whose SDKs the program is built with, at the SDK version
// (Pulumi providers and their Go SDKs are released with one version): from the binary's build
// information, or from <dir>/go.mod when the binary carries none (test binaries).
func RequiredPlugins(dir string) ([]Plugin, error) {
	var mods []module.Version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			mods = append(mods, module.Version{Path: m.Path, Version: m.Version})
		}
	}
	out := providers(mods)
	if len(out) > 0 {
		return out, nil
	}
	path := filepath.Join(dir, "go.mod")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("finding the provider versions: %w", err)
	}
	f, err := modfile.ParseLax(path, b, nil)
	if err != nil {
		return nil, err
	}
	mods = mods[:0]
	for _, r := range f.Require {
		mods = append(mods, r.Mod)
	}
	return providers(mods), nil
}

func providers(mods []module.Version) []Plugin {
	var out []Plugin
	for _, m := range mods {
		if sub := providerModuleRE.FindStringSubmatch(m.Path); sub != nil {
			out = append(out, Plugin{Name: sub[1], Version: m.Version})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
