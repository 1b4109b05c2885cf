package agent

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/wake"
)

// The folders of the data directory that hold a file or folder per task.
const (
	logsDir  = "logs"  // ID.log: the container's stdout and stderr
	filesDir = "files" // ID/: the hosts and resolv.conf mounted into it
)

// taskPath is the one place a task ID becomes a path: DATADIR/dir/ID+suffix.
// It refuses an ID that is not one Warren makes (api.ValidateID), behind
// the checks where IDs come in (the agent socket's routes, start), so that
// no ID, whoever sent it, names a path outside dir.
func (a *Agent) taskPath(dir, id, suffix string) (string, error) {
	if err := api.ValidateID(id); err != nil {
		return "", fmt.Errorf("agent: no %s path for this task: %w", dir, err)
	}
	return filepath.Join(a.cfg.DataDir, dir, id+suffix), nil
}

// logPath is the file a task's container writes its output to.
func (a *Agent) logPath(taskID string) (string, error) { return a.taskPath(logsDir, taskID, ".log") }

// netFilesDir holds the task's hosts and resolv.conf.
func (a *Agent) netFilesDir(taskID string) (string, error) { return a.taskPath(filesDir, taskID, "") }

// writeNetFiles writes the task's /etc/hosts and /etc/resolv.conf, to be
// bind-mounted read-only into the container.
func (a *Agent) writeNetFiles(t *api.Task, addr netip.Addr) ([]rt.Mount, error) {
	dir, err := a.netFilesDir(t.ID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s %s\n", addr, shortID(t.ID), t.Name())
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(a.resolvConf()), 0o644); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return []rt.Mount{
		{Type: "bind", Source: filepath.Join(dir, "hosts"), Destination: "/etc/hosts", ReadOnly: true},
		{Type: "bind", Source: filepath.Join(dir, "resolv.conf"), Destination: "/etc/resolv.conf", ReadOnly: true},
	}, nil
}

// resolvConf is what a container resolves with. With cluster DNS it is
// warren-dns alone, on the node's bridge address: a second nameserver is
// only asked on timeouts and would answer NXDOMAIN for cluster names; and
// ndots:2 sends "web.2" to the cluster domain first. Otherwise it is the
// host's configuration without loopback nameservers, which a container
// cannot reach.
func (a *Agent) resolvConf() string {
	b, _ := os.ReadFile("/etc/resolv.conf")
	if a.cfg.ClusterDNS && a.subnet.IsValid() {
		search := []string{a.cfg.ClusterDomain}
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) > 1 && (f[0] == "search" || f[0] == "domain") {
				search = append(search, f[1:]...)
			}
		}
		gw := a.subnet.Masked().Addr().Next()
		return fmt.Sprintf("nameserver %s\nsearch %s\noptions ndots:2\n", gw, strings.Join(search, " "))
	}
	var out strings.Builder
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil && ip.IsLoopback() {
				continue
			}
			n++
		}
		out.WriteString(line)
	}
	if n == 0 {
		out.WriteString("\n# the host's resolvers are on loopback; none is reachable from a container\n")
	}
	return out.String()
}

// How logLoop runs. It samples the log files for their indexes
// (logindex.go) at the whole second after one was written, so at most
// once every logSampleEvery: it watches the logs directory with inotify,
// and the agent of a node whose containers are quiet does not wake for
// them. While the directory cannot be watched it samples every
// logSampleEvery, as it did before it watched. It caps the files (rotates
// those over the limit, removes those of tasks that are gone) at most
// every logCapEvery as it samples, and every logSafety in any case; that
// is also when a file whose write event was lost gets its checkpoint.
//
// A file's first write event since the previous sample says when it
// began to grow: its checkpoint is taken logEventSlack before the event
// reached the agent (sampleOne), not at the previous sample, which may be
// long before. The slack covers the time the event took; were it later
// still (an agent stalled that long), ?since would show a line written
// just before the time asked for, never miss one. An event that arrives
// within the slack of a sample's end is not used: it may be of a write
// before the sample.
const (
	logSampleEvery = time.Second
	logCapEvery    = 10 * time.Second
	logSafety      = time.Minute
	logEventSlack  = 100 * time.Millisecond
)

// logLoop samples and caps the containers' log files (logSampleEvery). A
// file over the limit is copied to NAME.1 and truncated in place (the
// shim appends, so it writes on at the new end).
func (a *Agent) logLoop(ctx context.Context) {
	a.logLoopEvery(ctx, logSampleEvery, logCapEvery, logSafety)
}

func (a *Agent) logLoopEvery(ctx context.Context, every, capEvery, safety time.Duration) {
	dir := filepath.Join(a.cfg.DataDir, logsDir)
	logs := wake.NewDir(dir)
	defer logs.Close()
	// first: when each file began to grow since the previous sample, by
	// its first write event; zero for one whose first event came within
	// logEventSlack of the sample's end, which may tell of a write the
	// sample already saw, or hide one it did not.
	first := map[string]time.Time{}
	sampled := time.Now()
	note := func(p string) bool {
		if filepath.Dir(p) != dir || !strings.HasSuffix(p, ".log") {
			return false // ID.log.idx, ID.log.1: the agent's own
		}
		if _, ok := first[p]; !ok {
			t := time.Now().Add(-logEventSlack)
			if !t.After(sampled) {
				t = time.Time{}
			}
			first[p] = t
		}
		return true
	}
	noteOnly := func(p string) bool { note(p); return false }
	lastCap := time.Now() // the first cap waits for the agent to know its tasks
	for {
		logs.Watch()
		written, ok := logs.Wait(ctx, every, safety, note)
		if !ok {
			return
		}
		if written {
			// Sample at the next whole second, after that second's writes.
			if _, ok := logs.Wait(ctx, every, every, noteOnly); !ok {
				return
			}
		}
		a.logPasses.Add(1)
		matches, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		if now := time.Now(); now.Sub(lastCap) >= capEvery {
			matches = a.capLogs(matches)
			lastCap = now
		}
		if err := a.logIdx.sample(matches, first); err != nil {
			a.log.Warn("log index", "err", err)
		}
		clear(first)
		sampled = time.Now()
	}
}

// capLogs removes the logs of tasks the agent no longer knows and
// rotates the others'; it returns the logs that remain.
func (a *Agent) capLogs(matches []string) []string {
	kept := matches[:0]
	for _, p := range matches {
		id := strings.TrimSuffix(filepath.Base(p), ".log")
		a.mu.Lock()
		_, alive := a.containers[id]
		_, known := a.tasks[id]
		a.mu.Unlock()
		if !alive && !known {
			a.logIdx.forget(p)
			os.Remove(p)
			os.Remove(p + ".1")
			continue
		}
		kept = append(kept, p)
		if err := a.logIdx.rotate(p, a.cfg.LogMaxBytes); err != nil {
			a.log.Warn("rotate log", "file", p, "err", err)
		}
	}
	return kept
}

// rotate copies the file at path to path.1 and truncates it, when it is
// over maxBytes; rotated says it was.
func rotate(path string, maxBytes int64) (rotated bool, err error) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= maxBytes {
		return false, nil
	}
	src, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer src.Close()
	dst, err := os.Create(path + ".1")
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return false, err
	}
	if err := dst.Close(); err != nil {
		return false, err
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, err
	}
	return true, nil
}
