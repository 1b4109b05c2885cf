package api

import (
	"encoding/base64"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Node roles.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
)

// Node availabilities.
const (
	AvailabilityActive = "active" // takes new tasks
	AvailabilityPause  = "pause"  // keeps its tasks, takes no new ones
	AvailabilityDrain  = "drain"  // its tasks move elsewhere
)

// Node states, as the managers see them.
const (
	NodeUnknown = "unknown" // no agent has reported yet
	NodeReady   = "ready"
	NodeDown    = "down" // its agent stopped reporting
)

// Node is one device of the fleet.
type Node struct {
	Meta        `yaml:",inline"`
	Spec        NodeSpec        `json:"spec" yaml:"spec"`
	Description NodeDescription `json:"description" yaml:"description"`
	Status      NodeStatus      `json:"status" yaml:"status"`
	// Subnet is the node's container subnet, from the cluster range.
	Subnet string `json:"subnet,omitempty" yaml:"subnet,omitempty"`
	// Manager is set on manager nodes and filled in on reads.
	Manager *ManagerStatus `json:"manager,omitempty" yaml:"manager,omitempty"`
	// Volumes are the names of the volumes that live on the node, sorted:
	// its agent deletes the data of any other it holds once no task of
	// the node uses it.
	Volumes []string `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	// VolumesKnown: Volumes is kept by the managers (set with it). An
	// agent deletes data only on a list that says so: a record from a
	// Warren before volumes, whose list is empty for want of the field,
	// deletes nothing.
	VolumesKnown bool `json:"volumesKnown,omitempty" yaml:"volumesKnown,omitempty"`
}

// NodeSpec is what an operator sets on a node.
type NodeSpec struct {
	Labels       map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Role         string            `json:"role" yaml:"role"`
	Availability string            `json:"availability" yaml:"availability"`
}

// NodeDescription is what the node says about itself.
type NodeDescription struct {
	Hostname      string `json:"hostname" yaml:"hostname"`
	OS            string `json:"os,omitempty" yaml:"os,omitempty"`
	Arch          string `json:"arch,omitempty" yaml:"arch,omitempty"`
	NanoCPUs      int64  `json:"nanoCPUs" yaml:"nanoCPUs"`
	MemoryBytes   int64  `json:"memoryBytes" yaml:"memoryBytes"`
	EngineVersion string `json:"engineVersion,omitempty" yaml:"engineVersion,omitempty"`
	// RaftCommands is the newest Raft command type the node's manager
	// applies (store.LastCommand of its warren). The leader proposes a
	// newer command only once every manager applies it: a manager older
	// than a command it is sent stops (store: unknown command type).
	RaftCommands int `json:"raftCommands,omitempty" yaml:"raftCommands,omitempty"`
	// Addr is the node's address as the cluster reaches it.
	Addr string `json:"addr,omitempty" yaml:"addr,omitempty"`
	// Mesh is the node's end of the WireGuard mesh, once its agent set it
	// up.
	Mesh *NodeMesh `json:"mesh,omitempty" yaml:"mesh,omitempty"`
	// Images are the images the node holds, as its agent last said: the
	// nodes an image can be fetched from.
	Images []NodeImage `json:"images,omitempty" yaml:"images,omitempty"`
	// Certificate is the node's certificate as the managers last signed
	// it (a worker's; a manager signs its own).
	Certificate *NodeCertificate `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	// Disk is the space of the node's Warren data partition, as its agent
	// last reported it (nil: not reported).
	Disk *NodeDisk `json:"disk,omitempty" yaml:"disk,omitempty"`
}

// NodeCertificate is what the managers know of a node's certificate. The
// node renews it well before NotAfter; one cut off past NotAfter renews
// it when it is back, within the managers' grace (CAInfo.CertGrace), and
// must join again with a token after it.
type NodeCertificate struct {
	NotAfter time.Time `json:"notAfter" yaml:"notAfter"`
}

// Equal says whether two descriptions say the same.
// (TestNodeDescriptionEqualSeesEveryField keeps it whole when a field is
// added.)
func (d NodeDescription) Equal(o NodeDescription) bool {
	return d.Hostname == o.Hostname && d.OS == o.OS && d.Arch == o.Arch && d.NanoCPUs == o.NanoCPUs &&
		d.MemoryBytes == o.MemoryBytes && d.EngineVersion == o.EngineVersion && d.RaftCommands == o.RaftCommands && d.Addr == o.Addr &&
		(d.Mesh == o.Mesh || d.Mesh != nil && o.Mesh != nil && *d.Mesh == *o.Mesh) && slices.Equal(d.Images, o.Images) &&
		(d.Certificate == o.Certificate || d.Certificate != nil && o.Certificate != nil && d.Certificate.NotAfter.Equal(o.Certificate.NotAfter)) &&
		(d.Disk == o.Disk || d.Disk != nil && o.Disk != nil && *d.Disk == *o.Disk)
}

// NodeDisk is the space of the partition that holds a node's Warren data
// (its agent's data dir, where the container logs are).
type NodeDisk struct {
	// Path is the directory the agent measured.
	Path       string `json:"path" yaml:"path"`
	TotalBytes int64  `json:"totalBytes" yaml:"totalBytes"`
	// FreeBytes is the space a process that is not root may still use.
	FreeBytes int64 `json:"freeBytes" yaml:"freeBytes"`
}

// The free space a node keeps on its Warren data partition: the larger of
// MinDiskFreeBytes and MinDiskFreePercent of the partition. Below it the
// node is low on disk (NodeDisk.Low) and the scheduler places no new task
// there; the tasks already there stay.
const (
	MinDiskFreeBytes   = 256 << 20
	MinDiskFreePercent = 5
)

// DiskReserve is the free space a partition of total bytes keeps (the
// percentage rounded up to a byte).
func DiskReserve(total int64) int64 {
	q, r := total/100, total%100 // total*percent would overflow sooner
	return max(MinDiskFreeBytes, q*MinDiskFreePercent+(r*MinDiskFreePercent+99)/100)
}

// Low says whether the partition has less free than it keeps: no new task
// goes there. A disk not reported (nil) is not low.
func (d *NodeDisk) Low() bool { return d != nil && d.FreeBytes < DiskReserve(d.TotalBytes) }

// Validate checks what an agent reports of its disk.
func (d *NodeDisk) Validate() error {
	if !strings.HasPrefix(d.Path, "/") || len(d.Path) > 4096 {
		return Errorf(CodeInvalid, "disk: path %q: want the absolute path of the agent's data dir", d.Path)
	}
	if d.TotalBytes <= 0 || d.FreeBytes < 0 || d.FreeBytes > d.TotalBytes {
		return Errorf(CodeInvalid, "disk: %d bytes free of %d: want a size above 0 and 0 to all of it free", d.FreeBytes, d.TotalBytes)
	}
	return nil
}

// DiskChanged says whether a heartbeat's disk report differs enough from
// the stored one to be recorded (each record is a Raft write): it is the
// first, measures another partition, crosses the low mark, or moved by a
// hundredth of the partition (at least 64MiB).
func DiskChanged(stored, reported *NodeDisk) bool {
	switch {
	case reported == nil:
		return false
	case stored == nil, stored.Path != reported.Path, stored.TotalBytes != reported.TotalBytes, stored.Low() != reported.Low():
		return true
	}
	step := max(64<<20, reported.TotalBytes/100)
	moved := stored.FreeBytes - reported.FreeBytes
	return moved >= step || -moved >= step
}

// MaxNodeImages bounds the images a node reports (its record is sent to
// every node).
const MaxNodeImages = 256

// ValidateNodeImages checks what an agent reports of its images.
func ValidateNodeImages(imgs []NodeImage) error {
	if len(imgs) > MaxNodeImages {
		return Errorf(CodeInvalid, "images: %d reported, at most %d are kept: remove images the node does not need", len(imgs), MaxNodeImages)
	}
	for _, i := range imgs {
		if i.Ref == "" || len(i.Ref) > 512 {
			return Errorf(CodeInvalid, "images: reference %q: want an image reference of 1 to 512 bytes", i.Ref)
		}
		if err := ValidateDigest(i.Target.Digest); err != nil {
			return Errorf(CodeInvalid, "images: %s: %v", i.Ref, err)
		}
		if i.Size < 0 || i.Target.Size < 0 {
			return Errorf(CodeInvalid, "images: %s: negative size", i.Ref)
		}
	}
	return nil
}

// Mesh modes: the kernel's WireGuard, or the userspace implementation in
// warren-mesh.
const (
	MeshKernel    = "kernel"
	MeshUserspace = "userspace"
)

// NodeMesh is what the fleet knows of a node's end of the mesh. Its
// private key never leaves the node. Its endpoint is the node's address
// (Description.Addr's host) and Port.
type NodeMesh struct {
	// PublicKey is the node's WireGuard public key, base64.
	PublicKey string `json:"publicKey" yaml:"publicKey"`
	// Port is the UDP port the node's mesh listens on.
	Port uint16 `json:"port" yaml:"port"`
	// Mode is "kernel" or "userspace".
	Mode string `json:"mode" yaml:"mode"`
	// MTU is the mesh interface's MTU, computed from the underlay.
	MTU int `json:"mtu,omitempty" yaml:"mtu,omitempty"`
}

// Validate checks what an agent reports of its mesh.
func (m *NodeMesh) Validate() error {
	if k, err := base64.StdEncoding.DecodeString(m.PublicKey); err != nil || len(k) != 32 {
		return Errorf(CodeInvalid, "mesh: public key %q: want a WireGuard public key, 32 bytes in base64", m.PublicKey)
	}
	if m.Port == 0 {
		return Errorf(CodeInvalid, "mesh: port 0: want the UDP port the node's mesh listens on, 1 to 65535")
	}
	if m.Mode != MeshKernel && m.Mode != MeshUserspace {
		return Errorf(CodeInvalid, "mesh: mode %q: want %q or %q", m.Mode, MeshKernel, MeshUserspace)
	}
	if m.MTU != 0 && (m.MTU < 576 || m.MTU > 65535) {
		return Errorf(CodeInvalid, "mesh: MTU %d: want 576 to 65535", m.MTU)
	}
	return nil
}

// MeshEndpoint is where the node's mesh is reached: its address's host and
// its mesh port. It is invalid if either is unknown.
func (n *Node) MeshEndpoint() netip.AddrPort {
	if n.Description.Mesh == nil {
		return netip.AddrPort{}
	}
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(n.Description.Addr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(n.Description.Addr); err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), n.Description.Mesh.Port)
}

// NodeStatus is the managers' view of the node's health.
type NodeStatus struct {
	State     string    `json:"state" yaml:"state"`
	Message   string    `json:"message,omitempty" yaml:"message,omitempty"`
	Timestamp time.Time `json:"timestamp" yaml:"timestamp"`
}

// ManagerStatus describes a manager node's place in the Raft cluster.
type ManagerStatus struct {
	Leader       bool   `json:"leader" yaml:"leader"`
	Reachability string `json:"reachability" yaml:"reachability"`
	Addr         string `json:"addr,omitempty" yaml:"addr,omitempty"`
	// DiskFull: this manager stopped Raft because its disk is full, and
	// refuses writes until space is freed. Only the manager answering
	// knows its own (Info.DiskFull says more).
	DiskFull bool `json:"diskFull,omitempty" yaml:"diskFull,omitempty"`
	// Locked: this manager is autolocked and waits for warrenctl unlock
	// (only the manager answering knows its own; Info.Locked too).
	Locked bool `json:"locked,omitempty" yaml:"locked,omitempty"`
}

// Heartbeat is what an agent sends its manager periodically. The manager
// keeps it in memory; only a change of the node's state is written to Raft.
type Heartbeat struct {
	Description NodeDescription `json:"description"`
	// ImagesChanged: Description.Images is the node's whole list now (an
	// agent sends it only when it changed).
	ImagesChanged bool `json:"imagesChanged,omitempty"`
}

// Info describes the manager answering the call.
type Info struct {
	ClusterID string `json:"clusterID"`
	NodeID    string `json:"nodeID"`
	Role      string `json:"role"`
	RaftState string `json:"raftState"`
	// RaftVoter: this manager votes (a new one votes once caught up).
	RaftVoter   bool   `json:"raftVoter,omitempty"`
	Leader      string `json:"leader"`
	Index       uint64 `json:"index"`
	Version     string `json:"version"`
	Services    int    `json:"services"`
	Tasks       int    `json:"tasks"`
	Nodes       int    `json:"nodes"`
	DataDir     string `json:"dataDir,omitempty"`
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	// DiskFull, when set, says why and since when this manager stopped
	// Raft and refuses writes: its disk is full. It resumes on its own
	// once space is freed.
	DiskFull string `json:"diskFull,omitempty"`
	// Locked: this manager is autolocked: it serves reads and takes no
	// change until an admin runs warrenctl unlock on it.
	Locked bool `json:"locked,omitempty"`
}
