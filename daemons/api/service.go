package api

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"
)

// Service is a declared workload: the spec an operator wrote plus what the
// manager tracks about it.
type Service struct {
	Meta `yaml:",inline"`
	Spec ServiceSpec `json:"spec" yaml:"spec"`
	// SpecVersion is the Raft index at which Spec last changed; tasks carry
	// the SpecVersion they were made from, so outdated tasks are known.
	SpecVersion uint64 `json:"specVersion" yaml:"specVersion"`
	// PreviousSpec is the spec before the last update, kept for rollback.
	PreviousSpec *ServiceSpec `json:"previousSpec,omitempty" yaml:"previousSpec,omitempty"`
	// PreviousSpecVersion is the SpecVersion of PreviousSpec.
	PreviousSpecVersion uint64 `json:"previousSpecVersion,omitempty" yaml:"previousSpecVersion,omitempty"`
	// SameAsVersions are older SpecVersions whose tasks run the current
	// spec: a rollback returned to them, and the tasks the update never
	// reached are left alone (IsCurrent). PreviousSameAs is the list
	// that went with PreviousSpec. Both hold at most MaxSameAs versions.
	SameAsVersions []uint64 `json:"sameAsVersions,omitempty" yaml:"sameAsVersions,omitempty"`
	PreviousSameAs []uint64 `json:"previousSameAs,omitempty" yaml:"previousSameAs,omitempty"`
	// UpdateStatus reports the progress of the last rolling update.
	UpdateStatus *UpdateStatus `json:"updateStatus,omitempty" yaml:"updateStatus,omitempty"`
	// Status counts the service's tasks; it is filled in on reads that ask
	// for it (?status), not stored.
	Status *ServiceStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

// ServiceStatus counts a service's tasks, as docker service ls shows them.
type ServiceStatus struct {
	// RunningTasks are tasks meant to run that run.
	RunningTasks uint64 `json:"runningTasks" yaml:"runningTasks"`
	// DesiredTasks is the replica count, or for a global service the
	// number of nodes that should run it.
	DesiredTasks uint64 `json:"desiredTasks" yaml:"desiredTasks"`
}

// Service modes.
const (
	ModeReplicated = "replicated"
	ModeGlobal     = "global"
)

// ServiceSpec is what an operator declares. The JSON and YAML forms are the
// same; unknown fields are refused.
type ServiceSpec struct {
	Name   string            `json:"name" yaml:"name"`
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`

	Image string `json:"image" yaml:"image"`
	// Command replaces the image's entrypoint; Args replace its cmd.
	Command    []string `json:"command,omitempty" yaml:"command,omitempty"`
	Args       []string `json:"args,omitempty" yaml:"args,omitempty"`
	Env        []string `json:"env,omitempty" yaml:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty" yaml:"workingDir,omitempty"`
	User       string   `json:"user,omitempty" yaml:"user,omitempty"`
	ReadOnly   bool     `json:"readOnly,omitempty" yaml:"readOnly,omitempty"`

	// CapAdd and CapDrop change the Linux capabilities of a task's process
	// from DefaultCapabilities, by Docker's rules (EffectiveCapabilities):
	// names such as NET_ADMIN or cap_net_admin, or ALL.
	CapAdd  []string `json:"capAdd,omitempty" yaml:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty" yaml:"capDrop,omitempty"`
	// Seccomp is "default" (Docker's default system call filter; also
	// when empty) or "unconfined" (no filter).
	Seccomp string `json:"seccomp,omitempty" yaml:"seccomp,omitempty"`
	// AllowNewPrivileges turns no_new_privs off, so that setuid binaries
	// and file capabilities can raise a task's privileges. Off by default.
	AllowNewPrivileges bool `json:"allowNewPrivileges,omitempty" yaml:"allowNewPrivileges,omitempty"`
	// PidsLimit caps the processes and threads of each task (pids.max of
	// its cgroup): 0 means DefaultPidsLimit, -1 (PidsUnlimited) no limit.
	PidsLimit int64 `json:"pidsLimit,omitempty" yaml:"pidsLimit,omitempty"`

	// Mode is "replicated" (the default) or "global".
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Replicas is the task count of a replicated service. Left out of a
	// create or update, it is 1 (as with docker service create).
	Replicas uint64 `json:"replicas" yaml:"replicas"`

	Placement     Placement     `json:"placement,omitempty" yaml:"placement,omitempty"`
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty" yaml:"restartPolicy,omitempty"`
	// Offline says what a node cut off from every manager does with the
	// tasks (offline.go).
	Offline   OfflinePolicy `json:"offline,omitzero" yaml:"offline,omitempty"`
	Resources Resources     `json:"resources,omitempty" yaml:"resources,omitempty"`
	Ports     []PortConfig  `json:"ports,omitempty" yaml:"ports,omitempty"`
	// Ingress are the HTTP routes warren-ingress sends to the tasks
	// (ingress.go).
	Ingress []IngressRoute `json:"ingress,omitempty" yaml:"ingress,omitempty"`
	// Mounts are the volumes, host directories and tmpfs the container
	// gets (volume.go).
	Mounts       []Mount      `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	UpdateConfig UpdateConfig `json:"updateConfig,omitempty" yaml:"updateConfig,omitempty"`
	// RollbackConfig paces a rollback, by hand or automatic; left out, a
	// rollback goes as UpdateConfig says (with failureAction pause). Its
	// failureAction is pause or continue.
	RollbackConfig *UpdateConfig `json:"rollbackConfig,omitempty" yaml:"rollbackConfig,omitempty"`
	// StopGracePeriod is how long a task gets between SIGTERM and SIGKILL
	// (default 10s).
	StopGracePeriod Duration `json:"stopGracePeriod,omitempty" yaml:"stopGracePeriod,omitempty"`
	// StopDrain is how long a task that gets traffic keeps running after
	// it is told to stop, before its SIGTERM (default 1s). Its own node
	// takes it out of the node's ports at once; the drain gives every
	// other node's watch, and the warren-dns and warren-ingress of every
	// node, the time to do the same, so that no node sends a connection
	// to a process that is gone. A task that gets no traffic (not running,
	// no address, unhealthy) stops at once.
	StopDrain Duration `json:"stopDrain,omitempty" yaml:"stopDrain,omitempty"`
	// HealthCheck probes each task; an unhealthy task leaves DNS and is
	// replaced under the restart policy.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty" yaml:"healthCheck,omitempty"`
	// Secrets and Configs are mounted as files in each task (secret.go):
	// a secret read-only on a tmpfs, never on the node's disk.
	Secrets []FileRef `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	Configs []FileRef `json:"configs,omitempty" yaml:"configs,omitempty"`
}

// Health check kinds.
const (
	HealthHTTP = "http"
	HealthTCP  = "tcp"
	HealthExec = "exec"
)

// Task health (TaskStatus.Health).
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// HealthCheck says how the agent probes a task. http and tcp probes connect
// from inside the task's network namespace to 127.0.0.1:Port; exec runs
// Command in the container and wants exit code 0.
type HealthCheck struct {
	// Type is "http", "tcp" or "exec".
	Type string `json:"type" yaml:"type"`
	// Port in the container, for http and tcp.
	Port uint16 `json:"port,omitempty" yaml:"port,omitempty"`
	// Path for http (default "/").
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Status is the range of HTTP statuses that count as healthy, "200-399"
	// by default; a single code ("204") works too.
	Status string `json:"status,omitempty" yaml:"status,omitempty"`
	// Command for exec, e.g. ["sh", "-c", "test -f /tmp/ready"].
	Command []string `json:"command,omitempty" yaml:"command,omitempty"`
	// Interval between probes (default 10s).
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Timeout of one probe (default 5s).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Retries: consecutive failures that make a task unhealthy (default 3).
	Retries uint64 `json:"retries,omitempty" yaml:"retries,omitempty"`
	// StartPeriod: failures in this time after the start do not count.
	StartPeriod Duration `json:"startPeriod,omitempty" yaml:"startPeriod,omitempty"`
}

// Effective returns the check with its defaults filled in.
func (h HealthCheck) Effective() HealthCheck {
	if h.Interval == 0 {
		h.Interval = Duration(10e9)
	}
	if h.Timeout == 0 {
		h.Timeout = Duration(5e9)
	}
	if h.Retries == 0 {
		h.Retries = 3
	}
	if h.Type == HealthHTTP && h.Path == "" {
		h.Path = "/"
	}
	if h.Type == HealthHTTP && h.Status == "" {
		h.Status = "200-399"
	}
	return h
}

// Window is the time a task has to pass its check after it starts:
// StartPeriod plus Interval × Retries. A task that is not healthy by then
// fails a rolling update.
func (h HealthCheck) Window() time.Duration {
	h = h.Effective()
	return h.StartPeriod.D() + h.Interval.D()*time.Duration(h.Retries)
}

// Detection is the longest a failing task can still look healthy:
// Retries probes at Interval, the last one taking up to Timeout.
func (h HealthCheck) Detection() time.Duration {
	h = h.Effective()
	return h.Interval.D()*time.Duration(h.Retries) + h.Timeout.D()
}

// StatusRange parses Status ("200-399" or "204") into bounds.
func (h HealthCheck) StatusRange() (lo, hi int, err error) {
	s := h.Status
	if s == "" {
		s = "200-399"
	}
	a, b, found := strings.Cut(s, "-")
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("%q is not a status or a range like 200-399", h.Status)
	}
	hi = lo
	if found {
		if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
			return 0, 0, fmt.Errorf("%q is not a status or a range like 200-399", h.Status)
		}
	}
	if lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a range of HTTP statuses (100-599)", h.Status)
	}
	return lo, hi, nil
}

// Placement says which nodes may run the service's tasks.
type Placement struct {
	// Constraints are expressions like "node.labels.zone==east",
	// "node.role!=manager" or "node.hostname==pi-7"; all must hold.
	Constraints []string `json:"constraints,omitempty" yaml:"constraints,omitempty"`
}

// Restart conditions.
const (
	RestartNone      = "none"
	RestartOnFailure = "on-failure"
	RestartAny       = "any"
)

// RestartPolicy says when a finished task is replaced.
type RestartPolicy struct {
	// Condition is "any" (the default), "on-failure" or "none".
	Condition string `json:"condition,omitempty" yaml:"condition,omitempty"`
	// Delay between a task's end and its replacement's start (default 5s);
	// it doubles with each consecutive failure, up to 10 times Delay.
	Delay Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	// MaxAttempts bounds the restarts within Window; 0 is unbounded.
	MaxAttempts uint64 `json:"maxAttempts,omitempty" yaml:"maxAttempts,omitempty"`
	// Window is the span MaxAttempts counts over; 0 counts forever.
	Window Duration `json:"window,omitempty" yaml:"window,omitempty"`
}

// Resources are limits (enforced by the kernel) and reservations (counted
// by the scheduler against node capacity).
type Resources struct {
	Limits       ResourceAmounts `json:"limits,omitempty" yaml:"limits,omitempty"`
	Reservations ResourceAmounts `json:"reservations,omitempty" yaml:"reservations,omitempty"`
}

// ResourceAmounts is an amount of CPU and memory.
type ResourceAmounts struct {
	// NanoCPUs is written as a CPU count: "cpus": 0.5.
	NanoCPUs CPUs `json:"cpus,omitempty" yaml:"cpus,omitempty"`
	// MemoryBytes is written as bytes or with a unit: "memory": "64M".
	MemoryBytes Bytes `json:"memory,omitempty" yaml:"memory,omitempty"`
}

// Protocols of a published port.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// Publishing modes of a port (PortConfig.Mode).
const (
	// PortModeIngress publishes the port on every node of the cluster; a
	// node balances it over the service's running, healthy tasks on all
	// nodes, those of other nodes reached over the mesh.
	PortModeIngress = "ingress"
	// PortModeHost publishes the port only on the nodes that run a task
	// of the service, to those tasks; the client's address is always kept.
	PortModeHost = "host"
)

// PortConfig publishes a container port, on every node (mode ingress) or
// on the nodes that run the task (mode host).
type PortConfig struct {
	// Target is the port inside the container.
	Target uint16 `json:"target" yaml:"target"`
	// Published is the port on the node.
	Published uint16 `json:"published" yaml:"published"`
	// Protocol is "tcp" (the default) or "udp".
	Protocol string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// HostAddr binds the port to one address of the node; empty means all.
	// Only a host-mode port can be bound to one address.
	HostAddr string `json:"hostAddr,omitempty" yaml:"hostAddr,omitempty"`
	// Mode is "ingress" or "host". Left out, it is ingress, or host for a
	// port bound to one host address (PortConfig.Normalized).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// Update failure actions and orders.
const (
	FailurePause    = "pause"
	FailureContinue = "continue"
	FailureRollback = "rollback"

	OrderStopFirst  = "stop-first"
	OrderStartFirst = "start-first"
	// OrderBlueGreen starts a whole new set on standby beside the old one;
	// once every new task has passed the monitor, traffic (warren-dns and
	// published ports) moves to the new set in one step, and the old set
	// stays running on standby for KeepOld, so that a rollback moves it
	// back in one step too.
	OrderBlueGreen = "blue-green"
)

// UpdateConfig says how a changed spec rolls out over the tasks.
type UpdateConfig struct {
	// Parallelism is how many tasks are replaced at once (default 1; 0 means
	// all at once).
	Parallelism *uint64 `json:"parallelism,omitempty" yaml:"parallelism,omitempty"`
	// Delay between batches.
	Delay Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	// FailureAction is "pause" (the default), "continue" or "rollback":
	// what happens when more than MaxFailureRatio of the slots failed, or
	// the update made no progress for ProgressDeadline. "rollback" returns
	// the service to its previous spec under RollbackConfig.
	FailureAction string `json:"failureAction,omitempty" yaml:"failureAction,omitempty"`
	// Monitor is how long a new task must keep running, and with a health
	// check keep being healthy, to count as updated (default 5s). With a
	// health check it counts from the first healthy report and is never
	// shorter than the check's window (HealthCheck.Window), and the
	// check's detection time is added so that a failure starting inside
	// the window is still seen (MonitorFor).
	Monitor Duration `json:"monitor,omitempty" yaml:"monitor,omitempty"`
	// MaxFailureRatio is the share of failed updates tolerated, 0 to 1.
	MaxFailureRatio float64 `json:"maxFailureRatio,omitempty" yaml:"maxFailureRatio,omitempty"`
	// Order is "stop-first" (the default), "start-first" or "blue-green"
	// (OrderBlueGreen).
	Order string `json:"order,omitempty" yaml:"order,omitempty"`
	// KeepOld is how long a blue/green update keeps the set it switched
	// away from, running on standby (default 10m).
	KeepOld Duration `json:"keepOld,omitempty" yaml:"keepOld,omitempty"`
	// ProgressDeadline fails an update in which no slot was updated for
	// this long (default 10m); the failure action follows.
	ProgressDeadline Duration `json:"progressDeadline,omitempty" yaml:"progressDeadline,omitempty"`

	// Canary ("N" or "P%" of the replicas, rounded up) starts that many
	// tasks of the new spec beside the old set, which keeps running and
	// serving. Once they have been healthy for CanaryHealthyFor they are
	// promoted (AutoPromote, or warrenctl service promote) and the update
	// goes on as configured. A canary that fails rolls the service back,
	// which stops only the canaries. Replicated services only.
	Canary string `json:"canary,omitempty" yaml:"canary,omitempty"`
	// CanaryHealthyFor replaces Monitor for the canaries (default: Monitor).
	CanaryHealthyFor Duration `json:"canaryHealthyFor,omitempty" yaml:"canaryHealthyFor,omitempty"`
	AutoPromote      bool     `json:"autoPromote,omitempty" yaml:"autoPromote,omitempty"`

	// Waves updates a global service over the fleet in waves: cumulative
	// node counts, "N" or "P%" (rounded up), e.g. ["1", "10%", "100%"]
	// (a last wave of 100% is implied). Each wave must pass its monitor
	// before the next starts; a failure in a wave rolls the waves done
	// back. Global services only.
	Waves []string `json:"waves,omitempty" yaml:"waves,omitempty"`
	// WaveLabel picks the nodes of the first waves by the value of this
	// node label, lowest first (nodes without it last), then by node ID.
	WaveLabel string `json:"waveLabel,omitempty" yaml:"waveLabel,omitempty"`
}

// ParseShare reads a count ("3") or a share ("10%") of total, rounded up
// and at least 1 (at most total). Canary and Waves use it.
func ParseShare(s string, total int) (int, error) {
	s = strings.TrimSpace(s)
	var n int
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, fmt.Errorf("%q is not a share: use a percentage above 0 and up to 100, like 10%%", s)
		}
		n = int(math.Ceil(f * float64(total) / 100))
	} else {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("%q is not a count: use a whole number above 0, or a percentage like 10%%", s)
		}
		n = v
	}
	return max(1, min(n, total)), nil
}

// WaveTargets returns the cumulative node counts of the waves over total
// nodes, ending with total.
func (u UpdateConfig) WaveTargets(total int) []int {
	var out []int
	for _, w := range u.Waves {
		n, err := ParseShare(w, total)
		if err != nil || (len(out) > 0 && n <= out[len(out)-1]) {
			continue
		}
		out = append(out, n)
	}
	if len(out) == 0 || out[len(out)-1] < total {
		out = append(out, total)
	}
	return out
}

// CanaryCount is how many canaries an update of a service of replicas
// starts (0: no canary phase).
func (u UpdateConfig) CanaryCount(replicas uint64) int {
	if u.Canary == "" || replicas == 0 {
		return 0
	}
	n, err := ParseShare(u.Canary, int(replicas))
	if err != nil {
		return 0
	}
	return n
}

// States of a rolling update (UpdateStatus.State).
const (
	UpdateUpdating    = "updating"
	UpdatePaused      = "paused"
	UpdateCompleted   = "completed"
	UpdateRollingBack = "rolling-back"
	UpdateRolledBack  = "rolled-back"
)

// UpdateStatus is the state of a service's last rolling update.
type UpdateStatus struct {
	State string `json:"state" yaml:"state"` // one of the Update* states
	// SpecVersion is the version the update moves the tasks to.
	SpecVersion uint64 `json:"specVersion,omitempty" yaml:"specVersion,omitempty"`
	Message     string `json:"message,omitempty" yaml:"message,omitempty"`
	StartedAt   string `json:"startedAt,omitempty" yaml:"startedAt,omitempty"`
	CompletedAt string `json:"completedAt,omitempty" yaml:"completedAt,omitempty"`
	// Updated counts the slots whose new task passed its monitor, and
	// ProgressAt is when that count last grew (or the update started):
	// the progress deadline counts from it (RFC 3339 with fractions of a
	// second: a deadline of a few seconds must not end early).
	Updated    int    `json:"updated,omitempty" yaml:"updated,omitempty"`
	ProgressAt string `json:"progressAt,omitempty" yaml:"progressAt,omitempty"`
	// Failed counts the slots whose new task failed during the update.
	Failed int `json:"failed,omitempty" yaml:"failed,omitempty"`
	// Deployment names the deployment the update belongs to (a stack
	// deploy or an apply of several services): when one of its services
	// rolls back on its own, all of them do.
	Deployment string `json:"deployment,omitempty" yaml:"deployment,omitempty"`
	// Automatic says the rollback was started by the update's failure
	// action, not by an operator.
	Automatic bool `json:"automatic,omitempty" yaml:"automatic,omitempty"`
	// Canaries is how many canaries the update runs beside the old set;
	// Promoted says they were promoted (the update then goes on).
	Canaries int  `json:"canaries,omitempty" yaml:"canaries,omitempty"`
	Promoted bool `json:"promoted,omitempty" yaml:"promoted,omitempty"`
	// Wave is the wave a global service's update is in (1 is the first),
	// with UpdateConfig.Waves.
	Wave int `json:"wave,omitempty" yaml:"wave,omitempty"`
}

// InCanary says whether the update waits on its canaries: it has some,
// they are not promoted, and it is not a rollback.
func (s *Service) InCanary() bool {
	st := s.UpdateStatus
	return st != nil && st.State == UpdateUpdating && st.Canaries > 0 && !st.Promoted
}

// Defaults used when a spec leaves a field empty.
const (
	DefaultStopGracePeriod = Duration(10e9)
	DefaultStopDrain       = Duration(1e9)
	DefaultRestartDelay    = Duration(5e9)
	DefaultUpdateMonitor   = Duration(5e9)
	DefaultUpdateDeadline  = Duration(10 * 60e9)
	DefaultKeepOld         = Duration(10 * 60e9)
)

// Seccomp modes (ServiceSpec.Seccomp).
const (
	SeccompDefault    = "default"
	SeccompUnconfined = "unconfined"
)

// DefaultPidsLimit is pids.max of a task whose spec sets no PidsLimit. A
// service rarely needs more than a few hundred processes and threads,
// while a fork bomb or a thread leak in one container would otherwise take
// every PID of a small device (pid_max is 32768 on up to 32 CPUs) and
// with them the node's own daemons: 2048 leaves room for busy services and
// lets sixteen runaway tasks at most exhaust such a node.
const DefaultPidsLimit = 2048

// PidsUnlimited as a PidsLimit runs a task without a pids limit.
const PidsUnlimited = -1

// DefaultCapabilities is the capability set a task's process starts from:
// Docker's default set, which is also containerd's.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
	"CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// EffectivePidsLimit returns the spec's pids limit with its default:
// DefaultPidsLimit for 0, PidsUnlimited for no limit.
func (s *ServiceSpec) EffectivePidsLimit() int64 {
	if s.PidsLimit == 0 {
		return DefaultPidsLimit
	}
	return s.PidsLimit
}

// EffectiveSeccomp returns the spec's seccomp mode with its default.
func (s *ServiceSpec) EffectiveSeccomp() string {
	if s.Seccomp == "" {
		return SeccompDefault
	}
	return s.Seccomp
}

// EffectiveCapabilities returns the capabilities a task of the spec runs
// with, sorted, by Docker's rules: ALL in CapAdd gives every capability
// but those in CapDrop; otherwise ALL in CapDrop gives CapAdd alone;
// otherwise DefaultCapabilities minus CapDrop plus CapAdd (so a name in
// both lists is kept). Names CapAdd or CapDrop may not hold are skipped:
// ValidateServiceSpec refuses them. The result is never nil.
func (s *ServiceSpec) EffectiveCapabilities() []string {
	add, addAll := normalizeCapabilities(s.CapAdd)
	drop, dropAll := normalizeCapabilities(s.CapDrop)
	without := func(from, drop []string) []string {
		return slices.DeleteFunc(slices.Clone(from), func(c string) bool { return slices.Contains(drop, c) })
	}
	var out []string
	switch {
	case addAll:
		out = without(capabilityNames(), drop)
	case dropAll:
		out = add
	default:
		out = append(without(DefaultCapabilities, drop), add...)
	}
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// normalizeCapabilities returns the valid names of caps in their
// canonical form, and whether ALL is among them.
func normalizeCapabilities(caps []string) (names []string, all bool) {
	for _, c := range caps {
		n, err := NormalizeCapability(c)
		switch {
		case err != nil:
		case n == CapabilityAll:
			all = true
		default:
			names = append(names, n)
		}
	}
	return names, all
}

// IsGlobal says whether the spec runs one task per eligible node.
func (s *ServiceSpec) IsGlobal() bool { return s.Mode == ModeGlobal }

// EffectiveStopGrace returns the stop grace period with its default.
func (s *ServiceSpec) EffectiveStopGrace() Duration {
	if s.StopGracePeriod == 0 {
		return DefaultStopGracePeriod
	}
	return s.StopGracePeriod
}

// EffectiveStopDrain returns the stop drain with its default.
func (s *ServiceSpec) EffectiveStopDrain() Duration {
	if s.StopDrain == 0 {
		return DefaultStopDrain
	}
	return s.StopDrain
}

// EffectiveCondition returns the restart condition with its default.
func (p RestartPolicy) EffectiveCondition() string {
	if p.Condition == "" {
		return RestartAny
	}
	return p.Condition
}

// EffectiveDelay returns the restart delay with its default.
func (p RestartPolicy) EffectiveDelay() Duration {
	if p.Delay == 0 {
		return DefaultRestartDelay
	}
	return p.Delay
}

// EffectiveParallelism returns the update parallelism with its default of 1;
// 0 means all tasks at once.
func (u UpdateConfig) EffectiveParallelism() uint64 {
	if u.Parallelism == nil {
		return 1
	}
	return *u.Parallelism
}

// IsCurrent says whether t runs the service's current spec: it was made
// from it, or from the older version a rollback returned to.
func (s *Service) IsCurrent(t *Task) bool {
	return t.SpecVersion >= s.SpecVersion || slices.Contains(s.SameAsVersions, t.SpecVersion)
}

// MaxSameAs bounds Service.SameAsVersions: after that many rollbacks in a
// row without a full update, the oldest tasks are replaced like others.
const MaxSameAs = 8

// Rolling says whether the service's last update is a rollback.
func (s *Service) Rolling() bool {
	return s.UpdateStatus != nil && s.UpdateStatus.State == UpdateRollingBack
}

// ActiveUpdateConfig is how the running update is paced: RollbackConfig
// during a rollback (UpdateConfig with failureAction pause if none is
// given), UpdateConfig otherwise.
func (s *Service) ActiveUpdateConfig() UpdateConfig {
	if !s.Rolling() {
		return s.Spec.UpdateConfig
	}
	if s.Spec.RollbackConfig != nil {
		return *s.Spec.RollbackConfig
	}
	return s.Spec.UpdateConfig.AsRollback()
}

// AsRollback is the update policy as a rollback uses it when the service
// has no rollback policy of its own: failure action pause, no canaries,
// no waves (a rollback returns to a spec that ran).
func (u UpdateConfig) AsRollback() UpdateConfig {
	u.FailureAction = FailurePause
	u.Canary, u.CanaryHealthyFor, u.AutoPromote = "", 0, false
	u.Waves, u.WaveLabel = nil, ""
	return u
}

// EffectiveKeepOld is KeepOld with its default.
func (u UpdateConfig) EffectiveKeepOld() time.Duration {
	if u.KeepOld <= 0 {
		return DefaultKeepOld.D()
	}
	return u.KeepOld.D()
}

// EffectiveDeadline is ProgressDeadline with its default.
func (u UpdateConfig) EffectiveDeadline() time.Duration {
	if u.ProgressDeadline <= 0 {
		return DefaultUpdateDeadline.D()
	}
	return u.ProgressDeadline.D()
}

// MonitorFor is how long a new task made from spec must have run (from
// its start) or, with a health check, been healthy (from its first
// healthy report) to count as updated: Monitor (default 5s), never less
// than the check's window, plus the time the check takes to see a
// failure. A check that fails three seconds after a task turned healthy
// therefore fails the update even with a one-second monitor (Swarm's
// monitor could end before the check could fail).
func (u UpdateConfig) MonitorFor(hc *HealthCheck) time.Duration {
	m := u.Monitor.D()
	if u.Monitor == 0 {
		m = DefaultUpdateMonitor.D()
	}
	if hc == nil {
		return m
	}
	h := hc.Effective()
	return max(m, h.Window()) + h.Detection()
}

// Proto returns the port's protocol with its default.
func (p PortConfig) Proto() string {
	if p.Protocol == "" {
		return ProtoTCP
	}
	return p.Protocol
}

// Ingress says whether the port is published in ingress mode, its
// default applied (Normalized).
func (p PortConfig) Ingress() bool { return p.Normalized().Mode == PortModeIngress }

// SpecEqual says whether two specs are the same, field for field.
func SpecEqual(a, b *ServiceSpec) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return bytes.Equal(ra, rb)
}
