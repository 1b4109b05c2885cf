package manager_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// A write that arrives while the managers elect a leader waits for the
// election (up to 5 s), then is applied: it does not fail with "no
// leader" at once.
func TestWriteDuringAnElectionWaitsForTheLeader(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	old := c.WaitLeader()
	f := c.Followers()[0]
	old.Stop()
	// The followers notice the leader's loss after a heartbeat timeout;
	// the write comes before.
	start := time.Now()
	if _, err := f.Client.CreateService(ctx, svcSpec("during-election")); err != nil {
		t.Fatalf("a write on follower %s right after the leader %s stopped = %v, want it applied once a new leader is elected", f.ID, old.ID, err)
	}
	t.Logf("the write during the election was answered after %s", time.Since(start).Round(time.Millisecond))
	if l := c.WaitLeader(); l == old {
		t.Fatalf("the stopped manager %s still leads", old.ID)
	}
}

// A write passed on to a leader that stops answering (paused: it takes the
// request and never answers) goes to the new leader once one is elected,
// and is applied once, well before the old leader wakes up.
func TestForwardedWriteGoesToTheNewLeader(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	old := c.WaitLeader()
	f := c.Followers()[0]
	const pause = 6 * time.Second
	c.Pause(old)
	resumed := make(chan struct{})
	go func() {
		time.Sleep(pause)
		c.Resume(old)
		close(resumed)
	}()
	start := time.Now()
	s, err := f.Client.CreateService(ctx, svcSpec("rerouted"))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("a write on follower %s while the leader %s is paused = %v", f.ID, old.ID, err)
	}
	t.Logf("answered after %s (the old leader was paused for %s)", took.Round(time.Millisecond), pause)
	if took > pause/2 {
		t.Errorf("the write took %s: it waited for the paused leader (paused %s) instead of going to the new one", took, pause)
	}
	<-resumed
	// Applied once: one service of that name, the one the answer named,
	// on every manager once the old leader has caught up.
	for _, m := range c.Managers {
		eventually(t, "the write on "+m.ID, 10*time.Second, func() error {
			ss, err := m.Client.Services(ctx, client.ReadOptions{})
			if err != nil {
				return err
			}
			n := 0
			for _, x := range ss {
				if x.Spec.Name == "rerouted" {
					n++
					if x.ID != s.ID {
						t.Errorf("manager %s has service rerouted with ID %s, the answer said %s", m.ID, x.ID, s.ID)
					}
				}
			}
			if n != 1 {
				return errorf("%d services named rerouted", n)
			}
			return nil
		})
	}
}

// A write sent again with the same request ID (a client retrying after a
// timeout; a manager re-sending it to a new leader) is applied once: the
// second answer is the first one.
func TestWriteWithTheSameRequestIDAppliesOnce(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	f := c.Followers()[0]
	body := `{"name":"once","image":"localhost/busybox","replicas":1}`
	var ids []string
	for i := range 2 {
		code, out := rawCall(ctx, t, f.Socket, http.MethodPost, "/v1/services", body, map[string]string{api.RequestIDHeader: "retry-1"})
		if code != http.StatusCreated {
			t.Fatalf("send %d of one request: %d %s", i+1, code, out)
		}
		ids = append(ids, out)
	}
	if ids[0] != ids[1] {
		t.Errorf("the same request sent twice answered\n%s\nand\n%s\nwant the same answer", ids[0], ids[1])
	}
	// Another request ID is another write: refused, the name is taken.
	code, out := rawCall(ctx, t, f.Socket, http.MethodPost, "/v1/services", body, map[string]string{api.RequestIDHeader: "retry-2"})
	if code != http.StatusConflict {
		t.Errorf("a second request creating the same service: %d %s, want 409", code, out)
	}
	ss, _ := c.WaitLeader().Client.Services(ctx, client.ReadOptions{Consistent: true})
	if len(ss) != 1 {
		t.Errorf("%d services after one request sent twice, want 1", len(ss))
	}
	// A request ID that is not one is refused before anything happens.
	code, out = rawCall(ctx, t, f.Socket, http.MethodPost, "/v1/services", body, map[string]string{api.RequestIDHeader: strings.Repeat("x", 80)})
	if code != http.StatusBadRequest {
		t.Errorf("a write with a 80-character request ID: %d %s, want 400", code, out)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// rawCall sends one request to a manager's unix socket and returns the
// status and the body.
func rawCall(ctx context.Context, t *testing.T, socket, method, path, body string, headers map[string]string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, "http://warren"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
