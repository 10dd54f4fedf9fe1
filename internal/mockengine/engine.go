// Package mockengine runs a Pulumi program without a cloud and without the Pulumi CLI.
//
// It answers every resource registration with realistic outputs (ARNs, IDs, a kubeconfig, the
// outputs of pulumi-eks' remote components) and records what the program asked for: type, name,
// parent, inputs (secrets kept as secrets) and dependencies. The tests assert on that record,
// and `ztedge render` prints it for reviewers.
package mockengine

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Resource is one registration the program made.
type Resource struct {
	URN    string
	ID     string // the physical ID the mock assigned (custom resources)
	Type   string
	Name   string
	Parent string
	// Custom is false for component resources (ours and remote ones such as eks:index:Cluster).
	Custom bool
	// Remote marks a multi-language component that a real engine would construct in its provider.
	Remote bool
	// Synthetic marks a resource the engine registered itself to stand for a remote component's child.
	Synthetic bool
	Provider  string
	Inputs    resource.PropertyMap
	Outputs   resource.PropertyMap
	// Dependencies are the URNs this resource waits for (explicit DependsOn and those from its inputs).
	Dependencies []string
	// PropertyDependencies maps an input property to the URNs its value came from.
	PropertyDependencies map[string][]string
	// IgnoreChanges are the input properties a later update leaves as they were first created.
	IgnoreChanges []string
}

// Engine implements pulumi.MockResourceMonitor and records every registration.
type Engine struct {
	Project string
	Stack   string
	Region  string
	// Zones answers Route53 zone lookups by zone ID; any other ID is the public example.com.
	Zones map[string]Zone

	mu        sync.Mutex
	ctx       *pulumi.Context
	resources []*Resource
	byURN     map[string]*Resource
	pending   map[string]resource.PropertyMap // outputs waiting for a synthetic registration, by name
	seq       int
}

// Zone is a Route53 hosted zone as a lookup reports it.
type Zone struct {
	Name    string
	Private bool
}

// New returns an engine for the given project and stack.
func New(project, stack, region string) *Engine {
	if region == "" {
		region = "us-east-1"
	}
	return &Engine{
		Project: project, Stack: stack, Region: region,
		byURN:   map[string]*Resource{},
		pending: map[string]resource.PropertyMap{},
	}
}

// Run executes program against the engine with the given stack configuration
// (keys such as "ztedge:hostname"; values as the Pulumi CLI passes them, objects as JSON).
func (e *Engine) Run(program pulumi.RunFunc, config map[string]string, secretKeys []string) error {
	wrapped := func(ctx *pulumi.Context) error {
		e.mu.Lock()
		e.ctx = ctx
		e.mu.Unlock()
		return program(ctx)
	}
	return pulumi.RunErr(wrapped, pulumi.WithMocks(e.Project, e.Stack, e), withConfig(config, secretKeys))
}

func withConfig(config map[string]string, secretKeys []string) pulumi.RunOption {
	return func(info *pulumi.RunInfo) {
		info.Config = config
		info.ConfigSecretKeys = secretKeys
	}
}

// Resources returns the recorded registrations in registration order.
func (e *Engine) Resources() []*Resource {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Resource, len(e.resources))
	copy(out, e.resources)
	return out
}

// ByURN returns the registration with that URN, or nil.
func (e *Engine) ByURN(urn string) *Resource {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byURN[urn]
}

func (e *Engine) urnFor(parent, typ, name string) string {
	parentType := tokens.Type("")
	if p := resource.URN(parent); p != "" && p.QualifiedType() != resource.RootStackType {
		parentType = p.QualifiedType()
	}
	return string(resource.NewURN(tokens.QName(e.Stack), tokens.PackageName(e.Project), parentType, tokens.Type(typ), name))
}

// NewResource answers a registration (pulumi.MockResourceMonitor).
func (e *Engine) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	rec := &Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Provider: args.Provider, Inputs: args.Inputs}
	if rpc := args.RegisterRPC; rpc != nil {
		rec.Parent = rpc.GetParent()
		rec.Remote = rpc.GetRemote()
		rec.IgnoreChanges = append(rec.IgnoreChanges, rpc.GetIgnoreChanges()...)
		rec.Dependencies = append(rec.Dependencies, rpc.GetDependencies()...)
		sort.Strings(rec.Dependencies)
		rec.PropertyDependencies = map[string][]string{}
		for k, v := range rpc.GetPropertyDependencies() {
			rec.PropertyDependencies[k] = append([]string(nil), v.GetUrns()...)
		}
	}
	rec.URN = e.urnFor(rec.Parent, rec.Type, rec.Name)

	e.mu.Lock()
	synthetic, isSynthetic := e.pending[rec.Type+"::"+rec.Name]
	delete(e.pending, rec.Type+"::"+rec.Name)
	e.seq++
	seq := e.seq
	e.mu.Unlock()

	var id string
	var outputs resource.PropertyMap
	var err error
	switch {
	case isSynthetic:
		rec.Synthetic = true
		id, outputs = rec.Name+"-id", synthetic
	case rec.Remote:
		outputs, err = e.remoteOutputs(rec)
	default:
		id, outputs = e.customOutputs(rec, seq)
	}
	if err != nil {
		return "", nil, err
	}
	if args.ID != "" {
		id = args.ID
	}
	rec.Outputs = outputs
	rec.ID = id

	e.mu.Lock()
	e.resources = append(e.resources, rec)
	e.byURN[rec.URN] = rec
	e.mu.Unlock()
	return id, outputs, nil
}

// registerSynthetic registers a stand-in for a child of a remote component, so that a resource
// reference to it resolves (the mock monitor answers getResource only for URNs it has seen),
// and returns that reference.
func (e *Engine) registerSynthetic(typ, name string, outputs resource.PropertyMap) (resource.PropertyValue, error) {
	e.mu.Lock()
	ctx := e.ctx
	e.pending[typ+"::"+name] = outputs
	e.mu.Unlock()
	if ctx == nil {
		return resource.PropertyValue{}, fmt.Errorf("mockengine: no program context to register %s", name)
	}
	var state pulumi.CustomResourceState
	if err := ctx.RegisterResource(typ, name, nil, &state); err != nil {
		return resource.PropertyValue{}, err
	}
	done := make(chan struct{})
	state.URN().ApplyT(func(pulumi.URN) int { close(done); return 0 })
	<-done
	urn := resource.URN(e.urnFor("", typ, name))
	return resource.MakeCustomResourceReference(urn, resource.ID(name+"-id"), ""), nil
}

// Call answers provider function invocations (data sources).
func (e *Engine) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	switch args.Token {
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		names := []any{e.Region + "a", e.Region + "b", e.Region + "c"}
		return resource.NewPropertyMapFromMap(map[string]any{"names": names, "zoneIds": names, "id": e.Region}), nil
	case "aws:index/getRegion:getRegion":
		return resource.NewPropertyMapFromMap(map[string]any{"name": e.Region, "region": e.Region, "id": e.Region}), nil
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"accountId": MockAccountID, "arn": "arn:aws:iam::" + MockAccountID + ":user/mock", "userId": "AIDMOCK", "id": MockAccountID,
		}), nil
	case "aws:lb/getHostedZoneId:getHostedZoneId":
		// The provider's static table: a made-up zone per region and load balancer type.
		lbType, _ := args.Args["loadBalancerType"].V.(string)
		if lbType == "" {
			lbType = "application"
		}
		return resource.NewPropertyMapFromMap(map[string]any{"id": MockELBZoneID(e.Region, lbType), "loadBalancerType": lbType}), nil
	case "aws:route53/getZone:getZone":
		// Every mocked zone is the public example.com (the stack files' hostnames are in it), unless
		// a test names another in Zones.
		id, _ := args.Args["zoneId"].V.(string)
		name, private := "example.com.", false
		if z, ok := e.Zones[id]; ok {
			name, private = z.Name, z.Private
		}
		return resource.NewPropertyMapFromMap(map[string]any{"id": id, "zoneId": id, "name": name, "privateZone": private}), nil
	case "aws:index/getPartition:getPartition":
		return resource.NewPropertyMapFromMap(map[string]any{"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}), nil
	}
	return nil, fmt.Errorf("mockengine: no answer for function %s", args.Token)
}

// MockELBZoneID is the canonical hosted zone the mock answers for load balancers of a type.
func MockELBZoneID(region, lbType string) string {
	return "ZMOCK" + strings.ToUpper(strings.ReplaceAll(region, "-", "")) + strings.ToUpper(lbType[:3])
}

// MockIssueTime is when every mocked certificate was issued.
var MockIssueTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// MockAccountID is the AWS account every mocked ARN lives in.
const MockAccountID = "123456789012"

// Sorted returns resources sorted by URN, for stable output.
func Sorted(rs []*Resource) []*Resource {
	out := append([]*Resource(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].URN < out[j].URN })
	return out
}

// ShortType turns "aws:ec2/subnet:Subnet" into "Subnet" for display.
func ShortType(t string) string {
	if i := strings.LastIndex(t, ":"); i >= 0 {
		return t[i+1:]
	}
	return t
}
