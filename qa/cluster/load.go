package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/wake"
)

// Write is one write a Load made, acknowledged or not.
type Write struct {
	Host    string // the manager whose socket took it
	Op      string // "create" or "label"
	Service string
	Value   int // the label's value ("label" writes)
	Start   time.Time
	End     time.Time
	Err     error // nil: acknowledged (committed)
}

// Load keeps writing through managers' sockets: each writer alternates
// creating a service (replicas 0: nothing to run) and setting the label
// "n" of its own register service to the next number.
type Load struct {
	prefix string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	writes []Write
	acked  chan time.Time
}

// Register is the name of the service a writer's label writes go to.
func Register(prefix, host string, writer int) string {
	return fmt.Sprintf("%s-%s-%d-reg", prefix, host, writer)
}

// StartLoad starts perHost writers on each host, naming services with
// prefix. The register services are made first, through hosts[0].
func StartLoad(ctx context.Context, hosts []*Host, perHost int, prefix string) (*Load, error) {
	for _, h := range hosts {
		for i := range perHost {
			spec := api.ServiceSpec{Name: Register(prefix, h.Name, i), Image: "localhost/busybox", Labels: map[string]string{"n": "0"}}
			if _, err := hosts[0].Client.CreateService(ctx, spec); err != nil {
				return nil, fmt.Errorf("cluster: create register %s: %w", spec.Name, err)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{prefix: prefix, cancel: cancel, acked: make(chan time.Time, 1<<16)}
	for _, h := range hosts {
		for i := range perHost {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.run(ctx, h, i)
			}()
		}
	}
	return l, nil
}

func (l *Load) run(ctx context.Context, h *Host, writer int) {
	reg := Register(l.prefix, h.Name, writer)
	for n := 1; ctx.Err() == nil; n++ {
		w := Write{Host: h.Name, Start: time.Now()}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if n%2 == 1 {
			w.Op, w.Service = "create", fmt.Sprintf("%s-%s-%d-%d", l.prefix, h.Name, writer, n)
			_, w.Err = h.Client.CreateService(rctx, api.ServiceSpec{Name: w.Service, Image: "localhost/busybox"})
		} else {
			w.Op, w.Service, w.Value = "label", reg, n
			spec := api.ServiceSpec{Name: reg, Image: "localhost/busybox", Labels: map[string]string{"n": strconv.Itoa(n)}}
			_, w.Err = h.Client.UpdateService(rctx, reg, spec, 0)
		}
		cancel()
		w.End = time.Now()
		if ctx.Err() != nil && w.Err != nil {
			return // stopped mid-write: neither acknowledged nor refused
		}
		l.mu.Lock()
		l.writes = append(l.writes, w)
		l.mu.Unlock()
		if w.Err == nil {
			select {
			case l.acked <- w.End:
			default:
			}
		} else {
			// A refused write comes back at once (no leader, a socket
			// whose manager is gone): do not spin.
			wake.For(ctx, 10*time.Millisecond)
		}
	}
}

// Stop stops the writers and returns every write they made.
func (l *Load) Stop() []Write {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Write(nil), l.writes...)
}

// Writes returns the writes made so far.
func (l *Load) Writes() []Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Write(nil), l.writes...)
}

// FirstAckSince waits for the first write that started at or after t to
// be acknowledged, and returns when it was.
func (l *Load) FirstAckSince(ctx context.Context, t time.Time) (time.Time, error) {
	for {
		l.mu.Lock()
		for _, w := range l.writes {
			if w.Err == nil && !w.Start.Before(t) {
				l.mu.Unlock()
				return w.End, nil
			}
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("cluster: no write acknowledged since %s", t.Format("15:04:05.000"))
		case <-l.acked:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// CheckAcked reads through h, consistently, and returns an error naming
// every acknowledged write that is not there: a created service that is
// missing, or a register whose label is below its last acknowledged value.
func CheckAcked(ctx context.Context, h *Host, writes []Write) error {
	svcs, err := h.Client.Services(ctx, client.ReadOptions{Consistent: true})
	if err != nil {
		return fmt.Errorf("%s: consistent read: %w", h.Name, err)
	}
	have := map[string]*api.Service{}
	for i := range svcs {
		have[svcs[i].Spec.Name] = &svcs[i]
	}
	lastLabel := map[string]int{}
	var errs []error
	for _, w := range writes {
		if w.Err != nil {
			continue
		}
		switch w.Op {
		case "create":
			if have[w.Service] == nil {
				errs = append(errs, fmt.Errorf("%s: service %s, created through %s at %s, is missing", h.Name, w.Service, w.Host, w.End.Format("15:04:05.000")))
			}
		case "label":
			lastLabel[w.Service] = max(lastLabel[w.Service], w.Value)
		}
	}
	for reg, want := range lastLabel {
		s := have[reg]
		if s == nil {
			errs = append(errs, fmt.Errorf("%s: register %s is missing", h.Name, reg))
			continue
		}
		got, _ := strconv.Atoi(s.Spec.Labels["n"])
		if got < want {
			errs = append(errs, fmt.Errorf("%s: register %s has n=%d, but n=%d was acknowledged", h.Name, reg, got, want))
		}
	}
	return errors.Join(errs...)
}

// Refused says whether err means the manager never took the request: its
// socket refused the connection (the manager is gone).
func Refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}
