package store

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
)

func TestIsDiskFull(t *testing.T) {
	enospc := &fs.PathError{Op: "write", Path: "/var/lib/warren/state.db", Err: syscall.ENOSPC}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{enospc, true},
		{fmt.Errorf("store: apply: %w", enospc), true},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, true},
		// bbolt's grow and raft's LogCache keep only the message.
		{fmt.Errorf("file resize error: %s", enospc), true},
		{fmt.Errorf("unable to store logs within log store, err: %q", enospc), true},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EIO}, false},
		{errors.New("timeout"), false},
	}
	for _, tt := range tests {
		if got := IsDiskFull(tt.err); got != tt.want {
			t.Errorf("IsDiskFull(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestFSMStopsOnFullDiskAndResumes: a batch that cannot be written for lack
// of space is refused with the disk-full error, without a panic; the FSM
// then applies nothing (and takes no snapshot) until Resume, after which the
// same entries, delivered again as a new Raft instance would, apply once.
func TestFSMStopsOnFullDiskAndResumes(t *testing.T) {
	h := newHarness(t)
	h.createService("s1", spec("one", 1))
	before := h.index
	var told []error
	h.fsm.OnDiskFull = func(err error) { told = append(told, err) }

	full := &fs.PathError{Op: "write", Path: h.state.path, Err: syscall.ENOSPC}
	h.state.failCommit = func() error { return full }
	batch := []*raft.Log{
		h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "s2"}, Spec: spec("two", 1)}}),
		h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "s3"}, Spec: spec("three", 1)}}),
	}
	wait := h.hub.Wait()
	res := h.fsm.ApplyBatch(batch)
	for i, r := range res {
		err := asErr(r)
		if !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "disk is full") {
			t.Errorf("ApplyBatch on a full disk: result %d = %v, want an unavailable \"disk is full\" error", i, r)
		}
	}
	if len(told) != 1 || !errors.Is(told[0], syscall.ENOSPC) {
		t.Errorf("OnDiskFull calls = %v, want one with ENOSPC", told)
	}
	if err := h.fsm.Failed(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Failed() = %v, want the ENOSPC error", err)
	}
	select {
	case <-wait:
		t.Error("a refused batch woke the watchers")
	default:
	}

	// Space is back, but this Raft instance goes on delivering: the FSM
	// stays stopped (applying the next entry would skip the refused ones).
	h.state.failCommit = nil
	next := h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "s4"}, Spec: spec("four", 1)}})
	if r := h.fsm.Apply(next); !api.IsCode(asErr(r), api.CodeUnavailable) {
		t.Errorf("Apply on a stopped FSM = %v, want the disk-full error", r)
	}
	if _, err := h.fsm.Snapshot(); err == nil {
		t.Error("Snapshot on a stopped FSM succeeded; it would be labelled past the state's index")
	}
	h.view(func(v *View) {
		if v.Index() != before || v.ServiceCount() != 1 {
			t.Errorf("while stopped: index %d with %d services, want %d with 1 (nothing written)", v.Index(), v.ServiceCount(), before)
		}
	})
	if len(told) != 1 {
		t.Errorf("OnDiskFull called %d times, want once per failure", len(told))
	}

	// Raft restarted: the new instance delivers again from its last
	// snapshot (here from the start), and the state's index skips what
	// was applied.
	h.fsm.Resume()
	for _, l := range append([]*raft.Log{{Index: before, Type: raft.LogCommand, Data: batch[0].Data}}, append(batch, next)...) {
		if r := h.fsm.Apply(l); asErr(r) != nil {
			t.Fatalf("Apply(entry %d) after Resume = %v", l.Index, r)
		}
	}
	h.view(func(v *View) {
		if v.Index() != next.Index || v.ServiceCount() != 4 {
			t.Errorf("after Resume: index %d with %d services, want %d with 4", v.Index(), v.ServiceCount(), next.Index)
		}
		for _, name := range []string{"one", "two", "three", "four"} {
			if _, err := v.Service(name); err != nil {
				t.Errorf("after Resume: Service(%s): %v", name, err)
			}
		}
	})
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot after Resume: %v", err)
	}
	snap.Release()
}

// TestFSMPanicsOnOtherWriteErrors: only a full disk stops the FSM; an I/O
// error still panics (systemd restarts the manager).
func TestFSMPanicsOnOtherWriteErrors(t *testing.T) {
	h := newHarness(t)
	h.state.failCommit = func() error { return &fs.PathError{Op: "write", Path: h.state.path, Err: syscall.EIO} }
	defer func() {
		if recover() == nil {
			t.Error("ApplyBatch on an I/O error did not panic")
		}
		if err := h.fsm.Failed(); err != nil {
			t.Errorf("Failed() = %v after an I/O error, want nil (not a full disk)", err)
		}
	}()
	h.apply(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "s"}, Spec: spec("web", 1)}})
}

// TestNodeRegisterKeepsTheDisk: the agent reports the disk, the manager
// the address; a registration that leaves the disk out keeps it.
func TestNodeRegisterKeepsTheDisk(t *testing.T) {
	h := newHarness(t)
	n := h.registerNode("n1")
	d := &api.NodeDisk{Path: "/var/lib/warren/agent", TotalBytes: 8 << 30, FreeBytes: 100 << 20}
	desc := n.Description
	desc.Disk = d
	n = h.mustApply(CmdNodeRegister, NodeRegister{ID: "n1", Description: desc, At: t0}).(*api.Node)
	if n.Description.Disk == nil || *n.Description.Disk != *d {
		t.Fatalf("NodeRegister with a disk: node's disk %+v, want %+v", n.Description.Disk, d)
	}
	desc.Disk, desc.Addr = nil, "10.0.0.9:4242"
	n = h.mustApply(CmdNodeRegister, NodeRegister{ID: "n1", Description: desc, At: t0}).(*api.Node)
	if n.Description.Disk == nil || *n.Description.Disk != *d || n.Description.Addr != "10.0.0.9:4242" {
		t.Errorf("NodeRegister without a disk: node's disk %+v, address %q; want %+v kept and the new address", n.Description.Disk, n.Description.Addr, d)
	}
}
