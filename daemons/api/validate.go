package api

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// Bounds on what a spec may ask for.
const (
	MaxReplicas     = 10000
	MaxNameLen      = 63
	MaxLabels       = 64
	MaxLabelKeyLen  = 128
	MaxLabelValLen  = 1024
	MaxArgs         = 256
	MaxArgLen       = 16 << 10
	MaxEnv          = 256
	MaxPorts        = 256
	MaxConstraints  = 32
	MinMemoryLimit  = 6 << 20 // below this runc and the kernel refuse or the task cannot start
	MaxDurationSpec = Duration(24 * 3600e9)
	MaxStopDrain    = Duration(5 * 60e9)
	MaxCapabilities = 64      // entries of capAdd or of capDrop
	MaxPidsLimit    = 4194304 // the kernel's PID_MAX_LIMIT
)

// IDLen and IDAlphabet describe the object IDs NewID makes; ValidateID
// accepts those and nothing else.
const (
	IDLen      = 25
	IDAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// CapabilityAll in CapAdd or CapDrop stands for every capability.
const CapabilityAll = "ALL"

// capabilities are the Linux capabilities (capabilities(7), up to Linux
// 5.9) a spec may add or drop, without their CAP_ prefix.
var capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
	"DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT",
	"SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "WAKE_ALARM",
}

// capabilityNames returns every capability with its CAP_ prefix.
func capabilityNames() []string {
	out := make([]string, len(capabilities))
	for i, c := range capabilities {
		out[i] = "CAP_" + c
	}
	return out
}

var (
	nameRe     = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
	labelKeyRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`)
	envKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)
	userRe     = regexp.MustCompile(`^([a-z_][a-z0-9_-]*\$?|[0-9]+)(:([a-z_][a-z0-9_-]*|[0-9]+))?$`)
)

// fieldErrs gathers validation failures so one response names them all
// (up to maxFieldErrs: a hostile spec must not make a huge answer).
type fieldErrs []FieldError

const maxFieldErrs = 50

func (f *fieldErrs) add(field, format string, args ...any) {
	if len(*f) >= maxFieldErrs {
		return
	}
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f fieldErrs) err(what string) error {
	if len(f) == 0 {
		return nil
	}
	msg := fmt.Sprintf("invalid %s: %s: %s", what, f[0].Field, f[0].Message)
	if len(f) > 1 {
		msg = fmt.Sprintf("invalid %s: %d problems", what, len(f))
	}
	return &Error{Code: CodeInvalid, Message: msg, Fields: f}
}

// ValidateName checks a service name: a DNS label (lower-case letters,
// digits and '-', starting with a letter), since tasks are found by DNS as
// NAME and NAME.SLOT.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a name is required")
	case len(name) > MaxNameLen:
		return fmt.Errorf("%q is %d characters long; the limit is %d", name, len(name), MaxNameLen)
	case !nameRe.MatchString(name):
		return fmt.Errorf("%q is not DNS-safe: use lower-case letters, digits and '-', starting with a letter and not ending with '-'", name)
	}
	return nil
}

// ValidateID checks that id is an object ID as NewID makes them: IDLen
// characters of IDAlphabet. The agent checks every task ID with it before
// the ID becomes part of a file path, so no ID can name a path outside the
// agent's directories. The error is an invalid-request *Error.
func ValidateID(id string) error {
	why := ""
	switch {
	case id == "":
		why = "it is empty"
	case strings.Contains(id, "/"):
		why = "it holds '/'"
	case strings.Contains(id, ".."):
		why = "it holds '..'"
	default:
		if i := strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune(IDAlphabet, r) }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(id[i:])
			why = fmt.Sprintf("it holds %q", r)
		} else if len(id) != IDLen {
			why = fmt.Sprintf("it is %d characters long", len(id))
		}
	}
	if why == "" {
		return nil
	}
	shown := id
	if len(shown) > 2*IDLen {
		shown = shown[:2*IDLen] + "..."
	}
	return Errorf(CodeInvalid, "%q is not a Warren ID: %s; an ID is %d characters of 0-9 and a-z", shown, why, IDLen)
}

// NormalizeCapability returns a capability name in its canonical form, as
// Docker reads them: any case, with or without the CAP_ prefix ("net_admin"
// and "CAP_NET_ADMIN" give "CAP_NET_ADMIN"); "all" gives CapabilityAll.
func NormalizeCapability(name string) (string, error) {
	n := strings.ToUpper(name)
	if n == CapabilityAll {
		return n, nil
	}
	n = strings.TrimPrefix(n, "CAP_")
	if _, ok := slices.BinarySearch(capabilities, n); !ok {
		return "", fmt.Errorf("%q is not a Linux capability: use ALL or one of %s (with or without CAP_, in any case)",
			name, strings.Join(capabilities, ", "))
	}
	return "CAP_" + n, nil
}

// ValidateImage checks an image reference ("busybox", "localhost/app:1.2",
// "registry:5000/team/app@sha256:...").
func ValidateImage(ref string) error {
	if ref == "" {
		return fmt.Errorf("an image is required")
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return fmt.Errorf("%q is not a valid image reference (%v): use NAME[:TAG] or NAME@sha256:DIGEST, e.g. localhost/busybox:latest", ref, err)
	}
	return nil
}

// NormalizeImage returns the fully qualified form of a valid reference:
// "busybox" becomes "docker.io/library/busybox:latest".
func NormalizeImage(ref string) (string, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(n).String(), nil
}

func validateLabels(fe *fieldErrs, field string, labels map[string]string) {
	if len(labels) > MaxLabels {
		fe.add(field, "%d labels; the limit is %d", len(labels), MaxLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if len(k) > MaxLabelKeyLen || !labelKeyRe.MatchString(k) {
			fe.add(field+"."+k, "invalid label key %q: use letters, digits, '.', '_', '/' and '-', at most %d characters", k, MaxLabelKeyLen)
		}
		if len(v) > MaxLabelValLen || strings.ContainsAny(v, "\x00\n") {
			fe.add(field+"."+k, "label value is longer than %d characters or holds a newline", MaxLabelValLen)
		}
	}
}

func validateDuration(fe *fieldErrs, field string, d Duration) {
	if d < 0 {
		fe.add(field, "must not be negative")
	} else if d > MaxDurationSpec {
		fe.add(field, "%s is more than the limit of %s", d, MaxDurationSpec)
	}
}

// ValidateServiceSpec checks everything in a spec that does not depend on
// other objects (name uniqueness and port clashes with other services are
// checked against the store). It returns an *Error listing every problem.
func ValidateServiceSpec(s *ServiceSpec) error {
	var fe fieldErrs
	if err := ValidateName(s.Name); err != nil {
		fe.add("name", "%v", err)
	}
	validateLabels(&fe, "labels", s.Labels)
	if err := ValidateImage(s.Image); err != nil {
		fe.add("image", "%v", err)
	}
	validateArgs(&fe, "command", s.Command)
	validateArgs(&fe, "args", s.Args)
	validateEnv(&fe, "env", s.Env)
	if s.WorkingDir != "" && (!path.IsAbs(s.WorkingDir) || strings.ContainsRune(s.WorkingDir, 0)) {
		fe.add("workingDir", "%q must be an absolute path", s.WorkingDir)
	}
	if s.User != "" && !userRe.MatchString(s.User) {
		fe.add("user", "%q is not USER, UID, USER:GROUP or UID:GID", s.User)
	}
	validateSecurity(&fe, s)
	switch s.Mode {
	case "", ModeReplicated:
		if s.Replicas > MaxReplicas {
			fe.add("replicas", "%d is more than the limit of %d", s.Replicas, MaxReplicas)
		}
	case ModeGlobal:
		if s.Replicas != 0 {
			fe.add("replicas", "a global service runs one task per node; leave replicas out")
		}
	default:
		fe.add("mode", "%q is not a mode: use replicated or global", s.Mode)
	}
	if len(s.Placement.Constraints) > MaxConstraints {
		fe.add("placement.constraints", "%d constraints; the limit is %d", len(s.Placement.Constraints), MaxConstraints)
	}
	for i, c := range s.Placement.Constraints {
		if _, err := ParseConstraint(c); err != nil {
			fe.add(fmt.Sprintf("placement.constraints[%d]", i), "%v", err)
		}
	}
	validateRestart(&fe, s.RestartPolicy)
	validateOffline(&fe, s.Offline)
	validateResources(&fe, s.Resources)
	validatePorts(&fe, s.Ports)
	validateIngress(&fe, s.Ingress)
	validateMounts(&fe, s.Mounts)
	validateUpdate(&fe, "updateConfig", s.UpdateConfig, false)
	if s.RollbackConfig != nil {
		validateUpdate(&fe, "rollbackConfig", *s.RollbackConfig, true)
	}
	switch u := s.UpdateConfig; {
	case u.Canary != "" && s.IsGlobal():
		fe.add("updateConfig.canary", "a global service has no canaries: update it in waves (updateConfig.waves, --update-waves 1,10%%,100%%)")
	case len(u.Waves) > 0 && !s.IsGlobal():
		fe.add("updateConfig.waves", "waves update a global service over nodes: a replicated service uses updateConfig.canary or parallelism")
	}
	if s.IsGlobal() {
		// A device that is offline would hold the switch of the whole
		// fleet: a global service updates node by node, or in waves.
		if s.UpdateConfig.Order == OrderBlueGreen {
			fe.add("updateConfig.order", "a global service cannot switch all its nodes in one step (an offline device would hold the switch): use start-first, with waves (--update-waves)")
		}
		if s.RollbackConfig != nil && s.RollbackConfig.Order == OrderBlueGreen {
			fe.add("rollbackConfig.order", "a global service cannot switch all its nodes in one step: use start-first or stop-first")
		}
	}
	validateDuration(&fe, "stopGracePeriod", s.StopGracePeriod)
	validateDuration(&fe, "stopDrain", s.StopDrain)
	if s.StopDrain > MaxStopDrain {
		fe.add("stopDrain", "%s is more than %s: a drain only needs to outlast the watches of the nodes (1s is the default)", s.StopDrain, MaxStopDrain)
	}
	if s.HealthCheck != nil {
		validateHealth(&fe, *s.HealthCheck)
	}
	validateFileRefs(&fe, s)
	return fe.err("service spec")
}

// validateSecurity checks what a spec changes of a task's confinement:
// capabilities, seccomp and the pids limit.
func validateSecurity(fe *fieldErrs, s *ServiceSpec) {
	for _, l := range []struct {
		field string
		caps  []string
	}{{"capAdd", s.CapAdd}, {"capDrop", s.CapDrop}} {
		if len(l.caps) > MaxCapabilities {
			fe.add(l.field, "%d capabilities; the limit is %d", len(l.caps), MaxCapabilities)
			continue
		}
		for i, c := range l.caps {
			if _, err := NormalizeCapability(c); err != nil {
				fe.add(fmt.Sprintf("%s[%d]", l.field, i), "%v", err)
			}
		}
	}
	switch s.Seccomp {
	case "", SeccompDefault, SeccompUnconfined:
	default:
		fe.add("seccomp", "%q is not a seccomp mode: use default (Docker's profile) or unconfined; custom profiles are not supported", s.Seccomp)
	}
	if s.PidsLimit < PidsUnlimited || s.PidsLimit > MaxPidsLimit {
		fe.add("pidsLimit", "%d is not a pids limit: use 1 to %d, -1 for no limit, or 0 (or leave it out) for the default of %d",
			s.PidsLimit, MaxPidsLimit, DefaultPidsLimit)
	}
}

func validateArgs(fe *fieldErrs, field string, args []string) {
	if len(args) > MaxArgs {
		fe.add(field, "%d arguments; the limit is %d", len(args), MaxArgs)
	}
	for i, a := range args {
		if len(a) > MaxArgLen || strings.ContainsRune(a, 0) {
			fe.add(fmt.Sprintf("%s[%d]", field, i), "argument is longer than %d bytes or holds a NUL byte", MaxArgLen)
		}
	}
}

// validateEnv checks a list of KEY=VALUE variables.
func validateEnv(fe *fieldErrs, field string, env []string) {
	if len(env) > MaxEnv {
		fe.add(field, "%d variables; the limit is %d", len(env), MaxEnv)
	}
	for i, e := range env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || !envKeyRe.MatchString(k) || strings.ContainsRune(e, 0) {
			fe.add(fmt.Sprintf("%s[%d]", field, i), "%q is not KEY=VALUE with a KEY of letters, digits and '_'", e)
		}
	}
}

func validateRestart(fe *fieldErrs, p RestartPolicy) {
	switch p.Condition {
	case "", RestartAny, RestartOnFailure, RestartNone:
	default:
		fe.add("restartPolicy.condition", "%q is not a condition: use any, on-failure or none", p.Condition)
	}
	validateDuration(fe, "restartPolicy.delay", p.Delay)
	validateDuration(fe, "restartPolicy.window", p.Window)
	if p.MaxAttempts > 1000000 {
		fe.add("restartPolicy.maxAttempts", "%d is more than the limit of 1000000", p.MaxAttempts)
	}
}

func validateResources(fe *fieldErrs, r Resources) {
	for _, a := range []struct {
		field string
		v     ResourceAmounts
	}{{"resources.limits", r.Limits}, {"resources.reservations", r.Reservations}} {
		if a.v.NanoCPUs < 0 {
			fe.add(a.field+".cpus", "must not be negative")
		}
		if a.v.MemoryBytes < 0 {
			fe.add(a.field+".memory", "must not be negative")
		}
	}
	if m := r.Limits.MemoryBytes; m > 0 && m < MinMemoryLimit {
		fe.add("resources.limits.memory", "%s is below the minimum of %s that a container can start with", FormatBytes(int64(m)), FormatBytes(MinMemoryLimit))
	}
	if l, res := r.Limits.MemoryBytes, r.Reservations.MemoryBytes; l > 0 && res > l {
		fe.add("resources.reservations.memory", "reservation %s is more than the limit %s", FormatBytes(int64(res)), FormatBytes(int64(l)))
	}
	if l, res := r.Limits.NanoCPUs, r.Reservations.NanoCPUs; l > 0 && res > l {
		fe.add("resources.reservations.cpus", "reservation %s is more than the limit %s", FormatCPUs(int64(res)), FormatCPUs(int64(l)))
	}
}

// PortKey identifies what a published port occupies on a node.
type PortKey struct {
	Proto    string
	HostAddr netip.Addr // the zero Addr means every address
	Port     uint16
}

// Key returns what the port occupies on a node. It assumes a validated port.
func (p PortConfig) Key() PortKey {
	k := PortKey{Proto: p.Proto(), Port: p.Published}
	if p.Published == 0 {
		k.Port = p.Target
	}
	k.HostAddr = p.boundAddr()
	return k
}

// boundAddr is the one address the port is bound to, or the zero Addr for
// every address (no HostAddr, 0.0.0.0 or ::, or one that does not parse).
func (p PortConfig) boundAddr() netip.Addr {
	if p.HostAddr != "" {
		if a, err := netip.ParseAddr(p.HostAddr); err == nil && !a.IsUnspecified() {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// ConflictsWith says whether two different services may not publish p and
// o together. An ingress port takes its protocol and port on every node,
// so it conflicts with any port of another service that clashes with it
// (PortKey.Clashes), ingress or host. Two host-mode ports only take their
// port on the nodes that run the tasks, and the scheduler keeps such tasks
// apart (it never places two services' clashing host ports on one node):
// they do not conflict.
func (p PortConfig) ConflictsWith(o PortConfig) bool {
	return (p.Ingress() || o.Ingress()) && p.Key().Clashes(o.Key())
}

// Clashes says whether two published ports cannot both be bound on a node:
// same protocol and port, and the same address or either on all addresses.
func (k PortKey) Clashes(o PortKey) bool {
	if k.Proto != o.Proto || k.Port != o.Port {
		return false
	}
	return !k.HostAddr.IsValid() || !o.HostAddr.IsValid() || k.HostAddr == o.HostAddr
}

func (k PortKey) String() string {
	if k.HostAddr.IsValid() {
		return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.HostAddr, k.Port), k.Proto)
	}
	return fmt.Sprintf("%d/%s", k.Port, k.Proto)
}

func validatePorts(fe *fieldErrs, ports []PortConfig) {
	if len(ports) > MaxPorts {
		fe.add("ports", "%d ports; the limit is %d", len(ports), MaxPorts)
		return // and no pairwise check over a hostile list
	}
	for i, p := range ports {
		f := fmt.Sprintf("ports[%d]", i)
		if p.Target == 0 {
			fe.add(f+".target", "a target port (1-65535) is required")
		}
		switch p.Protocol {
		case "", ProtoTCP, ProtoUDP:
		default:
			fe.add(f+".protocol", "%q is not a protocol: use tcp or udp", p.Protocol)
		}
		if p.HostAddr != "" {
			if _, err := netip.ParseAddr(p.HostAddr); err != nil {
				fe.add(f+".hostAddr", "%q is not an IP address", p.HostAddr)
			}
		}
		switch p.Mode {
		case "", PortModeHost:
		case PortModeIngress:
			if p.boundAddr().IsValid() {
				fe.add(f+".hostAddr", "an ingress port answers on every address of every node and cannot be bound to %s: publish it with mode host (-p mode=host,hostaddr=%s,...) or without a host address", p.HostAddr, p.HostAddr)
			}
		default:
			fe.add(f+".mode", "%q is not a publishing mode: use ingress (every node) or host (the nodes that run the task)", p.Mode)
		}
		for j := 0; j < i; j++ {
			if ports[j].Key().Clashes(p.Key()) {
				fe.add(f, "publishes %s, which ports[%d] already publishes", p.Key(), j)
				break // one clash per port says enough
			}
		}
	}
}

func validateUpdate(fe *fieldErrs, f string, u UpdateConfig, rollback bool) {
	validateDuration(fe, f+".delay", u.Delay)
	validateDuration(fe, f+".monitor", u.Monitor)
	validateDuration(fe, f+".progressDeadline", u.ProgressDeadline)
	switch {
	case u.FailureAction == "" || u.FailureAction == FailurePause || u.FailureAction == FailureContinue:
	case u.FailureAction == FailureRollback && !rollback:
	case rollback:
		fe.add(f+".failureAction", "%q is not an action for a failed rollback: use pause or continue", u.FailureAction)
	default:
		fe.add(f+".failureAction", "%q is not an action: use pause, continue or rollback", u.FailureAction)
	}
	validateDuration(fe, f+".keepOld", u.KeepOld)
	switch u.Order {
	case "", OrderStopFirst, OrderStartFirst:
		if u.KeepOld != 0 {
			fe.add(f+".keepOld", "keepOld is how long a blue/green update keeps the old set: set order blue-green too (--update-order blue-green)")
		}
	case OrderBlueGreen:
		if u.Canary != "" || len(u.Waves) > 0 {
			fe.add(f+".order", "a blue/green update switches the whole set at once: it has no canaries or waves (use start-first with them)")
		}
	default:
		fe.add(f+".order", "%q is not an order: use stop-first, start-first or blue-green", u.Order)
	}
	if !(u.MaxFailureRatio >= 0 && u.MaxFailureRatio <= 1) { // also NaN
		fe.add(f+".maxFailureRatio", "%v is not between 0 and 1", u.MaxFailureRatio)
	}
	validateDuration(fe, f+".canaryHealthyFor", u.CanaryHealthyFor)
	if rollback && (u.Canary != "" || len(u.Waves) > 0 || u.AutoPromote) {
		fe.add(f, "a rollback has no canaries or waves: it returns to a spec that ran (set them in updateConfig)")
	}
	if u.Canary != "" {
		if _, err := ParseShare(u.Canary, 100); err != nil {
			fe.add(f+".canary", "%v", err)
		}
	}
	if u.AutoPromote && u.Canary == "" {
		fe.add(f+".autoPromote", "there are no canaries to promote: set canary too (--update-canary N or P%%)")
	}
	last := 0
	for i, w := range u.Waves {
		n, err := ParseShare(w, 1000)
		if err != nil {
			fe.add(fmt.Sprintf("%s.waves[%d]", f, i), "%v", err)
			continue
		}
		if n < last && !strings.HasSuffix(w, "%") == !strings.HasSuffix(u.Waves[i-1], "%") {
			fe.add(fmt.Sprintf("%s.waves[%d]", f, i), "%q is smaller than the wave before it: waves are cumulative, like 1,10%%,100%%", w)
		}
		last = n
	}
	if u.WaveLabel != "" && len(u.Waves) == 0 {
		fe.add(f+".waveLabel", "waveLabel orders the waves: set waves too (--update-waves 1,10%%,100%%)")
	}
}

// ValidateNodeSpec checks a node spec.
func ValidateNodeSpec(s *NodeSpec) error {
	var fe fieldErrs
	switch s.Role {
	case RoleManager, RoleWorker:
	default:
		fe.add("role", "%q is not a role: use manager or worker", s.Role)
	}
	switch s.Availability {
	case AvailabilityActive, AvailabilityPause, AvailabilityDrain:
	default:
		fe.add("availability", "%q is not an availability: use active, pause or drain", s.Availability)
	}
	validateLabels(&fe, "labels", s.Labels)
	return fe.err("node spec")
}

func validateHealth(fe *fieldErrs, h HealthCheck) {
	switch h.Type {
	case HealthHTTP, HealthTCP:
		if h.Port == 0 {
			fe.add("healthCheck.port", "a %s check needs the port in the container to probe", h.Type)
		}
		if len(h.Command) > 0 {
			fe.add("healthCheck.command", "only an exec check runs a command")
		}
	case HealthExec:
		if len(h.Command) == 0 {
			fe.add("healthCheck.command", "an exec check needs a command, e.g. [\"sh\", \"-c\", \"test -f /tmp/ready\"]")
		}
		validateArgs(fe, "healthCheck.command", h.Command)
	default:
		fe.add("healthCheck.type", "%q is not a check: use http, tcp or exec", h.Type)
	}
	if h.Type == HealthHTTP {
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			fe.add("healthCheck.path", "%q must start with /", h.Path)
		}
		if _, _, err := h.StatusRange(); err != nil {
			fe.add("healthCheck.status", "%v", err)
		}
	} else if h.Path != "" || h.Status != "" {
		fe.add("healthCheck", "path and status apply to http checks only")
	}
	for _, d := range []struct {
		f string
		v Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"startPeriod", h.StartPeriod}} {
		validateDuration(fe, "healthCheck."+d.f, d.v)
	}
	if h.Interval > 0 && h.Interval < Duration(100e6) {
		fe.add("healthCheck.interval", "%s is shorter than the minimum of 100ms", h.Interval)
	}
	if h.Retries > 100 {
		fe.add("healthCheck.retries", "%d is more than the limit of 100", h.Retries)
	}
}
