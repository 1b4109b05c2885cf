package raft

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// killableStream is a TCP stream layer whose process can "die": its
// listener and every connection it accepted close at once.
type killableStream struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (s *killableStream) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err == nil {
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
	}
	return c, err
}

func (s *killableStream) Dial(address ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

func (s *killableStream) kill() {
	s.Listener.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// voter serves RPCs on addr ("127.0.0.1:0" for any port), granting every
// vote and pre-vote and accepting every AppendEntries.
func voter(t *testing.T, addr string) (*killableStream, *NetworkTransport) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &killableStream{Listener: l}
	trans := NewNetworkTransport(s, 2, 2*time.Second, io.Discard)
	go func() {
		for rpc := range trans.Consumer() {
			switch req := rpc.Command.(type) {
			case *RequestVoteRequest:
				rpc.Respond(&RequestVoteResponse{Term: req.Term, Granted: true}, nil)
			case *RequestPreVoteRequest:
				rpc.Respond(&RequestPreVoteResponse{Term: req.Term, Granted: true}, nil)
			case *AppendEntriesRequest:
				rpc.Respond(&AppendEntriesResponse{Term: req.Term, Success: true}, nil)
			default:
				rpc.Respond(nil, io.ErrUnexpectedEOF)
			}
		}
	}()
	t.Cleanup(func() { s.kill(); trans.Close() })
	return s, trans
}

// [warren] A peer that restarted leaves the connections pooled to it
// dead. The next vote, pre-vote or AppendEntries to it still reaches the
// new process (genericRPC sends it again on a new connection): upstream
// failed it with EOF, and a candidate lost its election for that.
func TestWarrenRPCAfterPeerRestart(t *testing.T) {
	s, _ := voter(t, "127.0.0.1:0")
	addr := ServerAddress(s.Addr().String())
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client := NewNetworkTransport(&killableStream{Listener: cl}, 2, 2*time.Second, io.Discard)
	defer client.Close()

	rpcs := map[string]func() error{
		"RequestVote": func() error {
			var resp RequestVoteResponse
			return client.RequestVote("v", addr, &RequestVoteRequest{Term: 7}, &resp)
		},
		"RequestPreVote": func() error {
			var resp RequestPreVoteResponse
			return client.RequestPreVote("v", addr, &RequestPreVoteRequest{Term: 7}, &resp)
		},
		"AppendEntries": func() error {
			var resp AppendEntriesResponse
			return client.AppendEntries("v", addr, &AppendEntriesRequest{Term: 7}, &resp)
		},
	}
	for name, call := range rpcs {
		// Two at once, so that the pool holds two connections.
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := call(); err != nil {
					t.Errorf("%s before the restart: %v", name, err)
				}
			}()
		}
		wg.Wait()
		s.kill()
		s, _ = voter(t, string(addr)) // the same address, a new process
		for i := 0; i < 2; i++ {
			if err := call(); err != nil {
				t.Errorf("%s %d after the peer restarted: %v, want it answered by the new process", name, i+1, err)
			}
		}
	}
}
