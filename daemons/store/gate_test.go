package store

import (
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

// TestCommandGate: the leader proposes a command from FirstGatedCommand
// on only once every manager says it applies it. A manager that says
// nothing (an older warren, or one that has not registered itself yet)
// holds back every gated command; one that says an older level holds back
// the newer ones; workers do not count. A heartbeat's description, which
// does not say, keeps what the manager said.
func TestCommandGate(t *testing.T) {
	h := newHarness(t)
	gate := func(c CommandType) (err error) {
		h.view(func(v *View) { err = v.CommandGate(c) })
		return err
	}
	h.registerNode("m1") // a manager whose record says nothing yet
	h.mustApply(CmdNodeRegister, NodeRegister{ID: "w1", Role: api.RoleWorker, Description: api.NodeDescription{Hostname: "host-w1"}, At: t0})
	if err := gate(CmdServiceCreate); err != nil {
		t.Errorf("an ungated command: %v", err)
	}
	if err := gate(CmdEvent); !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "host-m1") {
		t.Errorf("a gated command with a manager that said nothing: %v; want unavailable, naming host-m1", err)
	}
	say := func(id string, level CommandType) {
		h.mustApply(CmdNodeRegister, NodeRegister{ID: id, Description: api.NodeDescription{Hostname: "host-" + id, NanoCPUs: 2e9, MemoryBytes: 1 << 30, RaftCommands: int(level)}, At: t0})
	}
	say("m1", CmdServicePromote)
	if err := gate(CmdDeploy); err != nil {
		t.Errorf("a command the manager applies: %v", err)
	}
	if err := gate(CmdIngressPut); !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "up to 30") {
		t.Errorf("a command newer than the manager's: %v; want unavailable, saying its level", err)
	}
	say("m1", LastCommand)
	if err := gate(LastCommand); err != nil {
		t.Errorf("every manager applies it: %v", err)
	}
	// The agent's heartbeat rewrites the description without the level.
	h.mustApply(CmdNodeRegister, NodeRegister{ID: "m1", Description: api.NodeDescription{Hostname: "host-m1", NanoCPUs: 2e9, MemoryBytes: 1 << 30, EngineVersion: "containerd 1.7"}, At: t0})
	if err := gate(LastCommand); err != nil {
		t.Errorf("after a description without the level: %v", err)
	}
}

// TestLastCommandIsNewest: LastCommand moves with every new command, or
// managers would say they apply less than they do (or, worse, more).
func TestLastCommandIsNewest(t *testing.T) {
	newest := CommandType(0)
	for c := range commandNames {
		newest = max(newest, c)
	}
	if LastCommand != newest {
		t.Errorf("LastCommand is %d, the newest command is %s (%d): move LastCommand", LastCommand, newest, newest)
	}
}
