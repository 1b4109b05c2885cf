package manager_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/membership"
)

// A node's identity is its ID, never its hostname: a device joining under
// the name of a node that is down (a reinstalled device, or one passing
// itself off as another) is a new node beside it, and removes nothing.
func TestJoiningUnderAnotherNodesNameRemovesNothing(t *testing.T) {
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	first := startNetNode(t, filepath.Join(base, "1", "edge"), a.addr, a.joinToken(t, api.RoleWorker))
	firstID := first.NodeID()
	first.stop() // no agent ever reported: the node is not ready
	second := startNetNode(t, filepath.Join(base, "2", "edge"), a.addr, a.joinToken(t, api.RoleWorker))
	nodes, err := a.cl().Nodes(ctx, client.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, n := range nodes {
		if n.Description.Hostname == "edge" {
			named = append(named, n.ID)
		}
	}
	if len(named) != 2 || !strings.Contains(strings.Join(named, " "), firstID) || !strings.Contains(strings.Join(named, " "), second.NodeID()) {
		t.Errorf("nodes named edge after a second device joined under that name: %v, want both %s and %s", named, firstID, second.NodeID())
	}
}

// A heartbeat may not rename its node or change what it has (a worker
// that did so could attract tasks constrained to node.hostname==X): the
// hostname and resources are those the node joined with.
func TestHeartbeatCannotRenameItsNode(t *testing.T) {
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, a.joinToken(t, api.RoleWorker))
	before, err := a.cl().Node(ctx, w.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	hb := api.Heartbeat{Description: api.NodeDescription{Hostname: "db-primary", NanoCPUs: 1 << 50, MemoryBytes: 1 << 50, EngineVersion: "containerd 9"}}
	body, _ := json.Marshal(hb)
	resp, err := workerClient(t, w.dir).Post("https://"+a.addr+"/v1/nodes/"+w.NodeID()+"/heartbeat", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the worker's own heartbeat: %s", resp.Status)
	}
	after, err := a.cl().Node(ctx, w.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	if after.Description.Hostname != before.Description.Hostname || after.Description.NanoCPUs != before.Description.NanoCPUs ||
		after.Description.MemoryBytes != before.Description.MemoryBytes {
		t.Errorf("a heartbeat saying hostname db-primary and 2^50 CPUs changed the node: %+v, was %+v", after.Description, before.Description)
	}
	if after.Description.EngineVersion != "containerd 9" {
		t.Errorf("the heartbeat's engine version was not recorded: %q", after.Description.EngineVersion)
	}
}

// Joins are bounded per address: a burst past it is refused with 429 and
// when to try again, at the first manager the device reaches.
func TestJoinsAreRateLimitedPerAddress(t *testing.T) {
	a := startFirstManager(t, t.TempDir())
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}}
	limited, refused := 0, 0
	var msg string
	for range 30 {
		resp, err := hc.Post("https://"+a.addr+"/v1/join", "application/json", strings.NewReader(`{"token":"WRN-1-w-garbage","csr":"","description":{"hostname":"x"}}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			limited++
			msg = string(b)
		case http.StatusForbidden:
			refused++
		default:
			t.Fatalf("a join with a malformed token: %s %s", resp.Status, b)
		}
	}
	if limited == 0 || refused == 0 {
		t.Errorf("30 joins in a burst from one address: %d refused (bad token), %d limited; want the first ones judged and the rest limited", refused, limited)
	}
	if !strings.Contains(msg, "too many joins") || !strings.Contains(msg, "try again in") {
		t.Errorf("the limited answer %q does not say what to do", msg)
	}
}

// The node port drops a client that opens a connection and says nothing
// (a TLS handshake has a deadline), and holds at most so many connections
// per address.
func TestNodePortBoundsSlowAndGreedyClients(t *testing.T) {
	// The held connections must outlive the check of the fifth (they are
	// mid-handshake): a deadline long enough for a loaded machine.
	defer membership.SetNodePortLimitsForTest(2*time.Second, 4)()
	a := startFirstManager(t, t.TempDir())
	silent, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("a silent connection: %v after %s, want it closed by the node port", err, time.Since(start))
	} else {
		t.Logf("a silent connection was closed after %s", time.Since(start).Round(10*time.Millisecond))
	}
	// Four held open (mid-handshake), the fifth is closed at once.
	dialHeld(t, a.addr, 4)
	time.Sleep(50 * time.Millisecond)
	if err := closedAtOnce(t, a.addr); err != nil {
		t.Errorf("a fifth connection from one address (limit 4): %v, want it closed at once", err)
	}
}

// dialHeld opens n connections to addr that say nothing (so each waits
// mid-handshake), closed when the test ends.
func dialHeld(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	return held
}

// closedAtOnce opens a connection to addr and says whether the node port
// closed it at once (nil), as it does one it refuses; one let in would
// stay open until the handshake deadline (2 s in these tests).
func closedAtOnce(t *testing.T, addr string) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	switch {
	case err == nil:
		return errors.New("it sent something")
	case isTimeout(err):
		return errors.New("it was left open")
	}
	return nil
}

// A host that opens and drops connections gets so many TLS handshakes per
// second and no more: the manager runs before the node's containers, and
// handshakes cost it CPU.
func TestNodePortLimitsHandshakesPerAddress(t *testing.T) {
	defer membership.SetNodePortLimitsForTest(2*time.Second, 100)()
	defer membership.SetHandshakeRateForTest(3, time.Hour)()
	a := startFirstManager(t, t.TempDir())
	// Three let in: each waits mid-handshake (no ClientHello comes) until
	// the deadline; the fourth is closed at once.
	held := dialHeld(t, a.addr, 3)
	if err := closedAtOnce(t, a.addr); err != nil {
		t.Errorf("a fourth handshake from one address (3 allowed): %v, want the connection closed at once", err)
	}
	held[0].SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := held[0].Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("one of the three handshakes allowed: %v, want it still open (waiting for a ClientHello)", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
