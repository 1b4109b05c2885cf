package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// TestPlainHTTPToANodePort: a node port hangs up on plain HTTP; the error
// says that it may be one, and what to use instead.
func TestPlainHTTPToANodePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close() // as a node port does when the TLS handshake fails
		}
	}()
	c, err := New("http://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(context.Background())
	if err == nil || !strings.Contains(err.Error(), "hung up without an answer") || !strings.Contains(err.Error(), "speaks mutual TLS only: use https://") {
		t.Errorf("Info from a server that hangs up on plain HTTP: %v; want it to say a node port speaks mutual TLS only", err)
	}
}

// TestRetrying: with Retry, each try that will be made again is told to
// Retrying, and the call succeeds once a leader answers.
func TestRetrying(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(api.Errorf(api.CodeNotLeader, "no leader now"))
			return
		}
		json.NewEncoder(w).Encode(api.Info{NodeID: "n1"})
	}))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.Retry = 10 * time.Second
	var told []error
	c.Retrying = func(err error, _ time.Duration) { told = append(told, err) }
	info, err := c.Info(context.Background())
	if err != nil || info.NodeID != "n1" {
		t.Fatalf("Info through two answers of no leader: %+v, %v; want n1", info, err)
	}
	if len(told) != 2 || !api.IsCode(told[0], api.CodeNotLeader) {
		t.Errorf("Retrying was told %v; want the two not-leader answers", told)
	}
}
