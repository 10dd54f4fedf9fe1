package stacks

import "fmt"

// Switching ztedge:engine on a running stack is refused. The two engines share names (the edge
// namespace, the PKI's Secrets, the load balancer's target) under different resources, so one up
// would create the new engine's objects next to the old ones ("already exists"), repoint the load
// balancer before the new proxy and its auth gate are known to be ready, and delete the old
// engine last: no order the engine can be given makes that change safe. The state says which
// engine a stack runs, by the component only that engine registers.
var engineComponents = map[string]string{
	"ztedge:ambassador:Ambassador": EngineEmissary,
	"ztedge:edge:EnvoyGateway":     EngineEnvoyGateway,
}

// EngineSwitchError is returned by Preview and Up when ztedge:engine differs from the engine the
// stack runs.
type EngineSwitchError struct {
	Stack      string
	Running    string // the engine in the state
	Configured string // ztedge:engine in the stack file
}

func (e *EngineSwitchError) Error() string {
	return fmt.Sprintf("stack %[1]s runs engine %[2]s, but Pulumi.%[1]s.yaml sets ztedge:engine: %[3]s. "+
		"Switching the engine of a running stack is not supported: the two engines' objects share names, and no single up "+
		"can bring the new proxy up behind its auth check before the load balancer points at it. Either set ztedge:engine "+
		"back to %[2]s, or move without exposure: create a new stack with ztedge:engine: %[3]s, check it with "+
		"`ztedge smoke --stack <new>`, point the DNS name at it, then `ztedge destroy --stack %[1]s` "+
		"(or, accepting downtime, `ztedge destroy --stack %[1]s` first, then `ztedge up --stack %[1]s`). README, Engines.",
		e.Stack, e.Running, e.Configured)
}

// deployedEngine is the engine whose component is in the state ("" for a new or empty stack).
func (d *deployment) deployedEngine() string {
	for _, r := range d.resources {
		m, _ := r.(map[string]any)
		typ, _ := m["type"].(string)
		if engine, ok := engineComponents[typ]; ok {
			return engine
		}
	}
	return ""
}

// checkEngine refuses a preview or up that would switch the stack's engine.
func (o AutoOptions) checkEngine(stack string, d *deployment) error {
	st, err := o.Resolve(stack, false)
	if err != nil {
		return err
	}
	src, err := ReadStackFile(st.Dir, stack)
	if err != nil {
		return err
	}
	cfg, err := Load(src, stack)
	if err != nil {
		return err
	}
	if running := d.deployedEngine(); running != "" && running != cfg.Edge.Engine {
		return &EngineSwitchError{Stack: stack, Running: running, Configured: cfg.Edge.Engine}
	}
	return nil
}
