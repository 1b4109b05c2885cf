package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/netcfg/atomicfile"
)

// A task's secrets and configs as files in its container.
//
//	secret: fetched from the managers for this node's task (mTLS, the route
//	        checks the node runs a task that uses that version)
//	        ─▶ a tmpfs of the task's own on the host, SecretsDir/TASKID (0700)
//	        ─▶ bind-mounted read-only at the target, with the asked owner and mode
//	        ─▶ sealed with the node key under DATADIR/sealed/TASKID, so that
//	           a node cut off from the managers starts the task after a reboot
//	config: the same, but its files live under DATADIR/configs/TASKID (not
//	        secret, so on disk)
//
// All of it goes when the task's container is removed. The value is
// never on the node's disk in the clear, nor in the checkpoint (which
// holds the task's spec: references only), nor in a log.

// DefaultSecretsDir is where the agent mounts each task's tmpfs.
const DefaultSecretsDir = "/run/warren/secrets"

const (
	configsDir   = "configs" // DATADIR/configs/TASKID/N: config files
	sealedDir    = "sealed"  // DATADIR/sealed/TASKID/ID.VERSION: secrets under the node key
	nodeKeyFile  = "node.key"
	fetchTimeout = 10 * time.Second
)

// Mounter mounts a task's tmpfs; the default does it with mount(2). Tests
// give one that makes a plain directory.
type Mounter interface {
	MountTmpfs(dir string, size int) error
	Unmount(dir string) error
}

type sysMounter struct{}

func (sysMounter) MountTmpfs(dir string, size int) error {
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("mode=0700,size=%d", size))
}

func (sysMounter) Unmount(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil // not mounted
	}
	return err
}

// secretsDir is the task's tmpfs mount point.
func (a *Agent) secretsDir(taskID string) (string, error) {
	if err := api.ValidateID(taskID); err != nil {
		return "", err
	}
	return filepath.Join(a.cfg.SecretsDir, taskID), nil
}

// writeTaskFiles fetches t's secrets and configs and makes the mounts that
// put them at their targets.
func (a *Agent) writeTaskFiles(ctx context.Context, t *api.Task, local bool) ([]rt.Mount, error) {
	var mounts []rt.Mount
	if len(t.Spec.Secrets) > 0 {
		dir, err := a.secretsDir(t.ID)
		if err != nil {
			return nil, err
		}
		values := make([][]byte, len(t.Spec.Secrets))
		size := 64 << 10
		for i, r := range t.Spec.Secrets {
			if values[i], err = a.secretValue(ctx, t, r, local); err != nil {
				return nil, err
			}
			size += len(values[i]) + 4096
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		if err := a.cfg.Mounter.MountTmpfs(dir, size); err != nil {
			return nil, fmt.Errorf("secrets: mount a tmpfs at %s: %w", dir, err)
		}
		for i, r := range t.Spec.Secrets {
			m, err := writeRefFile(dir, i, r, values[i])
			if err != nil {
				return nil, fmt.Errorf("secret %s: %w", r.Name, err)
			}
			mounts = append(mounts, m)
		}
	}
	if len(t.Spec.Configs) > 0 {
		dir, err := a.taskPath(configsDir, t.ID, "")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("configs: %w", err)
		}
		for i, r := range t.Spec.Configs {
			path := filepath.Join(dir, strconv.Itoa(i))
			var data []byte
			if b, err := os.ReadFile(path); err == nil && local {
				data = b // cut off: the copy this task had
			} else {
				v, err := a.fetchFile(ctx, api.KindConfig, r)
				if err != nil {
					return nil, fmt.Errorf("config %s: %w", r.Name, err)
				}
				data = v
			}
			m, err := writeRefFile(dir, i, r, data)
			if err != nil {
				return nil, fmt.Errorf("config %s: %w", r.Name, err)
			}
			mounts = append(mounts, m)
		}
	}
	return mounts, nil
}

// writeRefFile writes one file with the reference's owner and mode, and
// says how it is mounted: read-only at its target.
func writeRefFile(dir string, i int, r api.FileRef, data []byte) (rt.Mount, error) {
	path := filepath.Join(dir, strconv.Itoa(i))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return rt.Mount{}, err
	}
	if err := os.Chown(tmp, int(r.UID), int(r.GID)); err != nil && !errors.Is(err, os.ErrPermission) {
		return rt.Mount{}, err
	}
	if err := os.Chmod(tmp, os.FileMode(r.Mode)); err != nil {
		return rt.Mount{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return rt.Mount{}, err
	}
	return rt.Mount{Type: "bind", Source: path, Destination: r.Target, ReadOnly: true}, nil
}

// secretValue is the value of t's secret r: from the managers, kept
// sealed under the node key for a restart while cut off; or, when the
// task restarts in place on a cut-off node (local), from that copy.
func (a *Agent) secretValue(ctx context.Context, t *api.Task, r api.FileRef, local bool) ([]byte, error) {
	path, aad, err := a.sealedPath(t, r)
	if err != nil {
		return nil, err
	}
	if local {
		if v, err := a.openSealed(path, aad); err == nil {
			return v, nil
		}
	}
	v, err := a.fetchFile(ctx, api.KindSecret, r)
	if err != nil {
		if v, oerr := a.openSealed(path, aad); oerr == nil {
			return v, nil // the managers are out of reach: the node's own copy
		}
		return nil, fmt.Errorf("secret %s: %w", r.Name, err)
	}
	if err := a.keepSealed(path, aad, v); err != nil {
		a.log.Warn("keep a secret sealed for an offline restart", "task", t.ID, "secret", r.Name, "err", err)
	}
	return v, nil
}

// fetchFile asks the managers for this node's copy of a secret or config,
// again for a while if it is refused: a manager that has not applied the
// task's assignment yet says the node runs no such task.
func (a *Agent) fetchFile(ctx context.Context, kind string, r api.FileRef) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		v, err := a.api.NodeFile(ctx, kind, a.nodeID, r.ID, r.Version)
		if err == nil {
			return v.Data, nil
		}
		if api.IsCode(err, api.CodeInvalid) || api.IsCode(err, api.CodeForbidden) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// sealedPath is where t's copy of secret r is kept under the node key,
// and the place it is sealed at: it opens for this node, task, secret and
// version only.
func (a *Agent) sealedPath(t *api.Task, r api.FileRef) (string, string, error) {
	dir, err := a.taskPath(sealedDir, t.ID, "")
	if err != nil {
		return "", "", err
	}
	if err := api.ValidateID(r.ID); err != nil {
		return "", "", err
	}
	name := r.ID + "." + strconv.FormatUint(r.Version, 10)
	return filepath.Join(dir, name), "node/" + a.nodeID + "/task/" + t.ID + "/" + api.SecretAAD(r.ID, r.Version), nil
}

func (a *Agent) keepSealed(path, aad string, v []byte) error {
	ring, err := a.nodeRing()
	if err != nil {
		return err
	}
	s, err := ring.Seal(v, aad)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

func (a *Agent) openSealed(path, aad string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s keys.Sealed
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	ring, err := a.nodeRing()
	if err != nil {
		return nil, err
	}
	return ring.Open(s, aad)
}

// nodeKey is the node key file: a key (the KEK of a one-key ring) and the
// data key it wraps. It never leaves the node.
type nodeKey struct {
	KEK keys.Key     `json:"kek"`
	DEK keys.Wrapped `json:"dek"`
}

// nodeRing opens the node key (DATADIR/node.key, 0600), making it the
// first time.
func (a *Agent) nodeRing() (*keys.Ring, error) {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.nodeKeys != nil {
		return a.nodeKeys, nil
	}
	path := filepath.Join(a.cfg.DataDir, nodeKeyFile)
	var nk nodeKey
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &nk); err != nil {
			return nil, fmt.Errorf("agent: node key %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		if nk.KEK, err = keys.NewKey(); err != nil {
			return nil, err
		}
		if nk.DEK, err = keys.WrapNew(nk.KEK, time.Now()); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(nk)
		if err := atomicfile.Write(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("agent: node key: %w", err)
		}
	default:
		return nil, fmt.Errorf("agent: node key: %w", err)
	}
	ring := keys.NewRing()
	if err := ring.Unlock(nk.KEK); err != nil {
		return nil, err
	}
	if err := ring.SetKeys([]keys.Wrapped{nk.DEK}, nk.DEK.ID); err != nil {
		return nil, fmt.Errorf("agent: node key %s does not open its data key: %w", path, err)
	}
	a.nodeKeys = ring
	return ring, nil
}

// removeTaskFiles undoes writeTaskFiles and drops the task's sealed
// copies: the node keeps only the secrets of tasks it holds.
func (a *Agent) removeTaskFiles(id string) {
	if dir, err := a.secretsDir(id); err == nil {
		if _, err := os.Stat(dir); err == nil {
			if err := a.cfg.Mounter.Unmount(dir); err != nil {
				a.log.Warn("unmount a task's secrets", "task", id, "err", err)
			}
			os.RemoveAll(dir)
		}
	}
	for _, d := range []string{configsDir, sealedDir} {
		if dir, err := a.taskPath(d, id, ""); err == nil {
			os.RemoveAll(dir)
		}
	}
}
