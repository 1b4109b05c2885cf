package raft

import (
	"sync"
	"testing"
	"time"
)

// blockingStable is an in-memory stable store whose SetUint64 waits, once
// armed, until it is released: a heartbeat caught writing the new term.
type blockingStable struct {
	*InmemStore
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStable) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		close(s.entered)
		<-s.release
	}
	return s.InmemStore.SetUint64(key, val)
}

// [warren] Shutdown's future must not return while a heartbeat is still
// at work: the caller closes the stores next, and a heartbeat that then
// writes the term panics ("failed to save current term: database not
// open", hashicorp/raft#717).
func TestWarrenShutdownWaitsForHeartbeat(t *testing.T) {
	stable := &blockingStable{InmemStore: NewInmemStore(), entered: make(chan struct{}), release: make(chan struct{})}
	conf := DefaultConfig()
	conf.LocalID = "a"
	conf.LogLevel = "error"
	_, trans := NewInmemTransport("a")
	r, err := NewRaft(conf, &MockFSM{}, NewInmemStore(), stable, NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	stable.mu.Lock()
	stable.armed = true
	stable.mu.Unlock()

	// A heartbeat of a newer term, as the network transport's fast path
	// hands it over: on a goroutine of its own.
	resp := make(chan RPCResponse, 1)
	go r.processHeartbeat(RPC{Command: &AppendEntriesRequest{RPCHeader: RPCHeader{ProtocolVersion: ProtocolVersionMax, ID: []byte("b"), Addr: []byte("b")},
		Term: r.getCurrentTerm() + 5}, RespChan: resp})
	<-stable.entered

	done := make(chan struct{})
	go func() {
		r.Shutdown().Error()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Shutdown().Error() returned while a heartbeat was still writing the term")
	case <-time.After(300 * time.Millisecond):
	}
	close(stable.release)
	<-done
	if v, _ := stable.GetUint64(keyCurrentTerm); v == 0 {
		t.Error("the heartbeat's term was not written")
	}
}
