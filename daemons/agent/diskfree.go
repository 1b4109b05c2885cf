package agent

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/daemons/api"
)

// diskFree measures the partition that holds the agent's data dir (the
// node's Warren data partition, where the container logs grow) for the
// heartbeat: the scheduler places no new task on a node low on it
// (api.NodeDisk.Low). It is nil when the partition cannot be measured.
func (a *Agent) diskFree() *api.NodeDisk {
	dir, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil
	}
	return &api.NodeDisk{Path: dir, TotalBytes: int64(st.Blocks) * st.Bsize, FreeBytes: int64(st.Bavail) * st.Bsize}
}
