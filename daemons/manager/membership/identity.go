package membership

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/store"
)

// Identity is what a node keeps about itself in its data directory
// (node.json).
type Identity struct {
	NodeID    string `json:"nodeID"`
	ClusterID string `json:"clusterID,omitempty"`
	// ClusterCIDR is the range node subnets come from, as the join said
	// (a worker has no cluster record to read it from).
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	Role        string `json:"role,omitempty"` // "" is a manager (a cluster it started)
	// Managers it learned at join time, to follow or to reach first.
	Managers []api.PeerAddr `json:"managers,omitempty"`
}

func identityPath(dataDir string) string { return filepath.Join(dataDir, "node.json") }

// LoadIdentity reads the node's identity, or makes one for a fresh data
// dir (fresh is then true; nothing is written yet) with the ID wantID, or
// a random one.
func LoadIdentity(dataDir, wantID string) (id Identity, fresh bool, err error) {
	path := identityPath(dataDir)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &id); err != nil || id.NodeID == "" {
			return id, false, fmt.Errorf("manager: %s is damaged (%v): restore it from a backup, or move the data dir away to start a new node", path, err)
		}
		return id, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return id, false, fmt.Errorf("manager: %w", err)
	}
	id.NodeID = wantID
	if id.NodeID == "" {
		id.NodeID = api.NewID()
	}
	return id, true, nil
}

// SaveIdentity writes the node's identity (when it changed).
func SaveIdentity(dataDir string, id Identity) error {
	path := identityPath(dataDir)
	b, _ := json.Marshal(id)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := store.WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("manager: save identity: %w", err)
	}
	return nil
}

// ReadIdentity reads the ID of the node whose data dir this is.
func ReadIdentity(dataDir string) (string, error) {
	b, err := os.ReadFile(identityPath(dataDir))
	if err != nil {
		return "", err
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return "", err
	}
	return id.NodeID, nil
}

// Identity is the node's identity as it stands.
func (m *Membership) Identity() Identity {
	m.idMu.Lock()
	defer m.idMu.Unlock()
	return m.identity
}

// Join joins a fresh data dir to the cluster through the manager at addr
// with token, before anything else of the node starts: it returns the
// node's identity, with its credentials saved in the data dir. A manager
// that is not up yet (devices boot together) is tried again for a
// minute; a refusal is final.
func Join(ctx context.Context, cfg Config, addr, token string, log *slog.Logger) (Identity, uint64, error) {
	jr, keyPEM, err := joinRetrying(ctx, cfg, addr, token, nil, log)
	if err != nil {
		return Identity{}, 0, err
	}
	if err := saveCredentialFiles(cfg.DataDir, []byte(jr.CertPEM), keyPEM, []byte(jr.BundlePEM)); err != nil {
		return Identity{}, 0, err
	}
	if jr.Role == api.RoleManager && len(jr.KEK) > 0 {
		if err := keys.InstallKEK(keys.KEKFile(cfg.DataDir), jr.KEK); err != nil {
			log.Warn("the KEK the leader gave: it is fetched again later", "err", err)
		}
	}
	log.Info("joined the cluster", "node", jr.NodeID, "role", jr.Role, "cluster", jr.ClusterID)
	return Identity{NodeID: jr.NodeID, ClusterID: jr.ClusterID, ClusterCIDR: jr.ClusterCIDR, Role: jr.Role, Managers: jr.Managers}, jr.Index, nil
}

// Rejoin joins the worker whose data dir cfg.DataDir is to the cluster
// again, through the manager at addr with a worker token, keeping its node
// ID, its record and its tasks (warren rejoin): for a worker whose
// certificate expired beyond the managers' grace while it was cut off.
// It presents the node's old certificate in the handshake, which proves
// that it holds the node's key; the managers refuse a node that was
// removed, or whose role changed meanwhile. Run it with the node's
// warren-manager stopped (it rewrites the node's TLS files) and start it
// again after; the node's containers keep running meanwhile.
func Rejoin(ctx context.Context, cfg Config, addr, token string, log *slog.Logger) (Identity, error) {
	id, fresh, err := LoadIdentity(cfg.DataDir, "")
	if err != nil {
		return Identity{}, err
	}
	if fresh {
		return Identity{}, fmt.Errorf("rejoin: %s holds no node: join it with warren manager --join ADDR --token-file FILE", cfg.DataDir)
	}
	if id.Role != api.RoleWorker {
		return Identity{}, fmt.Errorf("rejoin: node %s is a manager: a manager signs its own certificate and never needs to join again", id.NodeID)
	}
	prev, err := tls.LoadX509KeyPair(filepath.Join(cfg.DataDir, tlsDir, certFile), filepath.Join(cfg.DataDir, tlsDir, keyFile))
	if err != nil {
		return Identity{}, fmt.Errorf("rejoin: node %s's certificate (%w): without it the node cannot show it is itself; join it as a new node (a fresh data dir)", id.NodeID, err)
	}
	jr, keyPEM, err := joinRetrying(ctx, cfg, addr, token, &prev, log)
	if err != nil {
		return Identity{}, err
	}
	if jr.NodeID != id.NodeID || jr.Role != api.RoleWorker {
		return Identity{}, fmt.Errorf("rejoin: the manager at %s answered for node %s (%s), not %s: nothing was changed here; remove that node (warrenctl node rm %s)",
			addr, jr.NodeID, jr.Role, id.NodeID, jr.NodeID)
	}
	if err := saveCredentialFiles(cfg.DataDir, []byte(jr.CertPEM), keyPEM, []byte(jr.BundlePEM)); err != nil {
		return Identity{}, err
	}
	id.ClusterID, id.ClusterCIDR, id.Managers = jr.ClusterID, jr.ClusterCIDR, jr.Managers
	if err := SaveIdentity(cfg.DataDir, id); err != nil {
		return Identity{}, err
	}
	log.Info("joined the cluster again", "node", id.NodeID, "cluster", id.ClusterID)
	return id, nil
}

// joinRetrying asks the manager at addr to let this device in with token
// (presenting prev, its old certificate, if not nil), trying again for a
// minute while the manager cannot be reached (devices boot together); a
// refusal is final.
func joinRetrying(ctx context.Context, cfg Config, addr, token string, prev *tls.Certificate, log *slog.Logger) (*api.JoinResponse, []byte, error) {
	desc := LocalDescription(cfg.Hostname)
	desc.Addr = cfg.AdvertiseAddr
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		jr, keyPEM, err := joinCluster(ctx, addr, token, desc, prev)
		if err == nil || !errors.Is(err, errJoinUnreachable) || ctx.Err() != nil {
			return jr, keyPEM, err
		}
		log.Info("waiting for the manager to join through", "addr", addr, "err", err)
		core.Sleep(ctx, backoff)
	}
}

// SetJoinIndex tells a manager that joined on this start the leader's
// index at the time: it asks to vote once it has applied it.
func (m *Membership) SetJoinIndex(i uint64) { m.joinIndex = i }

// LocalDescription describes this host.
func LocalDescription(hostname string) api.NodeDescription {
	return api.NodeDescription{
		Hostname:    hostname,
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		NanoCPUs:    int64(runtime.NumCPU()) * 1e9,
		MemoryBytes: totalMemory(),
		// What this warren's manager applies (the leader's CommandGate).
		RaftCommands: int(store.LastCommand),
	}
}

func totalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		var kb int64
		if n, _ := fmt.Sscanf(line, "MemTotal: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

// managerIDs lists the managers to stream from and send to: those the
// node joined through, then those its state knows, without itself.
func (m *Membership) managerIDs() []string {
	seen := map[string]bool{m.nodeID: true}
	var out []string
	for _, p := range m.Identity().Managers {
		if !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p.ID)
		}
	}
	var known []string
	if m.store != nil {
		m.store.View(func(v *store.View) error {
			for _, n := range v.Nodes() {
				if n.Spec.Role == api.RoleManager && !seen[n.ID] {
					known = append(known, n.ID)
				}
			}
			return nil
		})
	}
	sort.Strings(known)
	return append(out, known...)
}

// ManagerIDs lists the managers a worker follows and sends its writes to,
// first the one it follows now (if any).
func (m *Membership) ManagerIDs(first string) []string {
	ids := m.managerIDs()
	if first != "" && slices.Contains(ids, first) {
		ids = append([]string{first}, slices.DeleteFunc(ids, func(id string) bool { return id == first })...)
	}
	return ids
}
