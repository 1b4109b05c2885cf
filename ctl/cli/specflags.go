package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/warren-edge/warren/ctl/opts"
	"github.com/warren-edge/warren/daemons/api"
)

// specFlags are the flags of service create and update that set fields
// of the spec. Only flags given on the command line change the spec.
type specFlags struct {
	// create only
	name        string
	mode        string
	publish     []string
	env         []string
	labels      []string
	constraints []string
	mounts      []string
	// update only
	image                       string
	args                        string
	envAdd, envRm               []string
	labelAdd, labelRm           []string
	constraintAdd, constraintRm []string
	publishAdd, publishRm       []string
	secretAdd, secretRm         []string
	configAdd, configRm         []string
	mountAdd, mountRm           []string
	capAddRm, capDropRm         []string
	ingressRm                   []string
	// both (--ingress on create, --ingress-add on update)
	ingressAdd, ingressMW       []string
	capAdd, capDrop             []string
	securityOpts                []string
	pidsLimit                   int64
	replicas                    uint64
	limitMemory, limitCPU       string
	reserveMemory, reserveCPU   string
	restartCondition            string
	restartDelay, restartWindow time.Duration
	offlineRestart, onReconnect string
	maxOffline                  time.Duration
	restartMaxAttempts          uint64
	update, rollback            policyFlags
	stopGrace                   time.Duration
	stopDrain                   time.Duration
	workdir, user, entrypoint   string
	readOnly                    bool
}

func (f *specFlags) register(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	if !update {
		fs.StringVar(&f.name, "name", "", "service name: lower-case letters, digits and '-' (default: a generated svc-xxxxx)")
		fs.StringVar(&f.mode, "mode", api.ModeReplicated, "replicated (N tasks) or global (one task per node)")
		fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port on every node (ingress): [HOSTADDR:]PUBLISHED:TARGET[/PROTO], e.g. 8080:80; only on the nodes that run a task: mode=host,published=8080,target=80 (a HOSTADDR implies mode host)")
		fs.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable: KEY=VALUE (KEY alone takes warrenctl's own value)")
		fs.StringArrayVarP(&f.labels, "label", "l", nil, "set a service label: KEY=VALUE")
		fs.StringArrayVar(&f.constraints, "constraint", nil, "placement constraint, e.g. node.labels.zone==east or node.role!=manager")
		fs.StringArrayVar(&f.secretAdd, "secret", nil, "mount a secret read-only on a tmpfs: NAME[,target=PATH,uid=N,gid=N,mode=0400] (target: /run/secrets/NAME; a relative one is under /run/secrets)")
		fs.StringArrayVar(&f.configAdd, "config", nil, "mount a config read-only: NAME[,target=PATH,uid=N,gid=N,mode=0444] (target: /NAME, or any absolute path)")
		fs.StringArrayVar(&f.mounts, "mount", nil, mountHelp)
		fs.StringArrayVar(&f.ingressAdd, "ingress", nil, ingressHelp)
		cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{api.ModeReplicated, api.ModeGlobal}, cobra.ShellCompDirectiveNoFileComp))
		cmd.RegisterFlagCompletionFunc("constraint", completeConstraint)
	} else {
		fs.StringVar(&f.image, "image", "", "run another image")
		fs.StringVar(&f.args, "args", "", `replace the arguments, split like a shell would: --args "sleep 100"`)
		fs.StringArrayVar(&f.envAdd, "env-add", nil, "add or change an environment variable: KEY=VALUE")
		fs.StringArrayVar(&f.envRm, "env-rm", nil, "remove an environment variable: KEY")
		fs.StringArrayVar(&f.labelAdd, "label-add", nil, "add or change a service label: KEY=VALUE")
		fs.StringArrayVar(&f.labelRm, "label-rm", nil, "remove a service label: KEY")
		fs.StringArrayVar(&f.constraintAdd, "constraint-add", nil, "add a placement constraint, e.g. node.labels.zone==east")
		fs.StringArrayVar(&f.constraintRm, "constraint-rm", nil, "remove a placement constraint")
		fs.StringArrayVar(&f.secretAdd, "secret-add", nil, "mount a secret (or change its mount): NAME[,target=PATH,uid=N,gid=N,mode=0400]")
		fs.StringArrayVar(&f.secretRm, "secret-rm", nil, "stop mounting a secret, by name")
		fs.StringArrayVar(&f.configAdd, "config-add", nil, "mount a config (or change its mount): NAME[,target=PATH,uid=N,gid=N,mode=0444]")
		fs.StringArrayVar(&f.configRm, "config-rm", nil, "stop mounting a config, by name")
		fs.StringArrayVar(&f.publishAdd, "publish-add", nil, "publish a port: [HOSTADDR:]PUBLISHED:TARGET[/PROTO], or mode=host,published=8080,target=80")
		fs.StringArrayVar(&f.publishRm, "publish-rm", nil, "unpublish a port, named by its target port (80) or in full (8080:80/tcp)")
		fs.StringArrayVar(&f.mountAdd, "mount-add", nil, mountHelp)
		fs.StringArrayVar(&f.mountRm, "mount-rm", nil, "remove the mount at a destination in the container: /data")
		fs.StringArrayVar(&f.ingressAdd, "ingress-add", nil, ingressHelp+" (a route of the same host and path is replaced, middleware and all)")
		fs.StringArrayVar(&f.ingressRm, "ingress-rm", nil, "remove an HTTP ingress route: HOST or HOST/PATH, e.g. shop.example.com/api")
		cmd.RegisterFlagCompletionFunc("constraint-add", completeConstraint)
		fs.StringArrayVar(&f.capAddRm, "cap-add-rm", nil, "forget a capability --cap-add added (the default applies to it again)")
		fs.StringArrayVar(&f.capDropRm, "cap-drop-rm", nil, "forget a capability --cap-drop dropped (the default applies to it again)")
	}
	fs.StringArrayVar(&f.ingressMW, "ingress-mw", nil, ingressMWHelp)
	capsHelp := "a Linux capability (NET_ADMIN or CAP_NET_ADMIN, or ALL)"
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add "+capsHelp+" to Docker's default set")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop "+capsHelp+"; --cap-drop ALL --cap-add X keeps X alone")
	fs.StringArrayVar(&f.securityOpts, "security-opt", nil, "opt out of a default: seccomp=unconfined (no system call filter; seccomp=default undoes it), no-new-privileges=false (setuid binaries work)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, fmt.Sprintf("most processes and threads a task may run (0: the default of %d; -1: no limit)", api.DefaultPidsLimit))
	cmd.RegisterFlagCompletionFunc("security-opt", cobra.FixedCompletions([]string{"seccomp=unconfined", "seccomp=default",
		"no-new-privileges=false", "no-new-privileges=true"}, cobra.ShellCompDirectiveNoFileComp))
	fs.Uint64Var(&f.replicas, "replicas", 1, "number of tasks of a replicated service")
	fs.StringVar(&f.limitMemory, "limit-memory", "", "memory limit, e.g. 64M or 1G")
	fs.StringVar(&f.limitCPU, "limit-cpu", "", "CPU limit, e.g. 0.5")
	fs.StringVar(&f.reserveMemory, "reserve-memory", "", "memory the scheduler reserves for each task, e.g. 32M")
	fs.StringVar(&f.reserveCPU, "reserve-cpu", "", "CPUs the scheduler reserves for each task, e.g. 0.25")
	fs.StringVar(&f.restartCondition, "restart-condition", "", "when to replace a finished task: any (default), on-failure or none")
	fs.DurationVar(&f.restartDelay, "restart-delay", 0, "wait between a task's end and its replacement (default 5s)")
	fs.Uint64Var(&f.restartMaxAttempts, "restart-max-attempts", 0, "most restarts within --restart-window (0: no limit)")
	fs.DurationVar(&f.restartWindow, "restart-window", 0, "the span --restart-max-attempts counts over (0: forever)")
	fs.StringVar(&f.offlineRestart, "offline-restart", "", "on a node cut off from the managers, restart an ended task in place (local, the default) or leave it for the managers (wait)")
	fs.DurationVar(&f.maxOffline, "offline-max", 0, "stop the tasks of a node cut off for this long (0, the default: never)")
	fs.StringVar(&f.onReconnect, "offline-reconnect", "", "when a cut-off node comes back and its slot was refilled elsewhere meanwhile, keep the node's copy (keep, the default) or the managers' (replace)")
	f.update.register(cmd, "update")
	f.rollback.register(cmd, "rollback")
	fs.DurationVar(&f.stopGrace, "stop-grace-period", 0, "time between SIGTERM and SIGKILL when a task stops (default 10s)")
	fs.DurationVar(&f.stopDrain, "stop-drain", 0, "time a task that gets traffic keeps running, out of every node's ports, DNS and routes, before its SIGTERM (default 1s)")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "user to run as: USER, UID, USER:GROUP or UID:GID")
	fs.StringVar(&f.entrypoint, "entrypoint", "", `replace the image's entrypoint, split like a shell would: --entrypoint "sh -c"`)
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem read-only")
	for flag, values := range map[string][]string{
		"restart-condition":       {api.RestartAny, api.RestartOnFailure, api.RestartNone},
		"offline-restart":         {api.OfflineRestartLocal, api.OfflineRestartWait},
		"offline-reconnect":       {api.OnReconnectKeep, api.OnReconnectReplace},
		"update-failure-action":   {api.FailurePause, api.FailureContinue, api.FailureRollback},
		"update-order":            {api.OrderStopFirst, api.OrderStartFirst, api.OrderBlueGreen},
		"rollback-failure-action": {api.FailurePause, api.FailureContinue},
		"rollback-order":          {api.OrderStopFirst, api.OrderStartFirst, api.OrderBlueGreen},
	} {
		cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
}

const (
	ingressHelp = "route HTTP(S) requests for a host and path prefix to the tasks' port (warren-ingress): " +
		"host=shop.example.com,path=/api,port=8080[,strip-prefix][,rewrite=/v2][,tls=acme|none|secret:NAME]" +
		"[,challenge=http-01|tls-alpn-01|dns-01][,redirect=true|false][,proxy-protocol=v1|v2]"
	ingressMWHelp = "set the middleware of an ingress route of the service: host=HOST[,path=PATH],KEY=VALUE... with " +
		"allow=CIDR;CIDR (quote the ; or repeat allow=), deny=CIDR;CIDR, rate=R (requests a second per client; 0 removes), burst=N, basic-auth=SECRET (htpasswd -B lines), realm=TEXT, " +
		"req-header-set=K:V, req-header-add=K:V, req-header-rm=K, resp-header-set=K:V, resp-header-add=K:V, resp-header-rm=K " +
		"(quote an item holding a comma)"
)

const mountHelp = "mount a volume, host path or tmpfs: type=volume,src=NAME,dst=/data[,readonly] | type=bind,src=/host/path,dst=/path[,readonly] (under a path the node allows: warren agent --allow-bind) | type=tmpfs,dst=/path[,size=64m][,mode=1777]"

func completeConstraint(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"node.labels.", "node.role==", "node.role!=", "node.hostname==", "node.hostname!=", "node.id==",
		"node.platform.os==", "node.platform.arch=="}, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// apply changes spec by the flags given in fs. Its errors are about flag
// values: usage errors.
func (f *specFlags) apply(fs *pflag.FlagSet, spec *api.ServiceSpec, getenv func(string) string) error {
	set := fs.Changed
	lookup := func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
	if set("mode") {
		spec.Mode = f.mode
		if f.mode == api.ModeGlobal {
			if set("replicas") {
				return fmt.Errorf("--replicas does not go with --mode global: a global service runs one task per node")
			}
			spec.Replicas = 0
		}
	}
	if set("replicas") {
		spec.Replicas = f.replicas
	}
	if set("image") {
		spec.Image = f.image
	}
	if set("args") {
		words, err := opts.SplitWords(f.args)
		if err != nil {
			return fmt.Errorf("--args: %w", err)
		}
		spec.Args = words
	}
	if set("entrypoint") {
		words, err := opts.SplitWords(f.entrypoint)
		if err != nil {
			return fmt.Errorf("--entrypoint: %w", err)
		}
		spec.Command = words
	}
	if set("workdir") {
		spec.WorkingDir = f.workdir
	}
	if set("user") {
		spec.User = f.user
	}
	if set("read-only") {
		spec.ReadOnly = f.readOnly
	}

	// Confinement. The defaults are stored as empty fields, so that
	// undoing an opt-out gives back the spec it was.
	if len(f.capAdd)+len(f.capDrop)+len(f.capAddRm)+len(f.capDropRm) > 0 {
		add, drop, err := opts.Capabilities(spec.CapAdd, spec.CapDrop, f.capAdd, f.capDrop, f.capAddRm, f.capDropRm)
		if err != nil {
			return err
		}
		spec.CapAdd, spec.CapDrop = add, drop
	}
	for _, o := range f.securityOpts {
		so, err := opts.ParseSecurityOpt(o)
		if err != nil {
			return err
		}
		switch so.Seccomp {
		case api.SeccompDefault:
			spec.Seccomp = ""
		case api.SeccompUnconfined:
			spec.Seccomp = so.Seccomp
		}
		if so.NewPrivileges != nil {
			spec.AllowNewPrivileges = *so.NewPrivileges
		}
	}
	if set("pids-limit") {
		spec.PidsLimit = f.pidsLimit
	}

	// Environment: remove, then add (docker's order).
	spec.Env = opts.RemoveEnv(spec.Env, f.envRm...)
	for _, e := range append(slices.Clone(f.env), f.envAdd...) {
		kv, ok, err := opts.ParseEnv(e, lookup)
		if err != nil {
			return err
		}
		if ok {
			spec.Env = opts.SetEnv(spec.Env, kv)
		}
	}

	// Labels.
	if len(f.labelRm) > 0 || len(f.labels) > 0 || len(f.labelAdd) > 0 {
		labels := maps.Clone(spec.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		for _, k := range f.labelRm {
			delete(labels, k)
		}
		for _, l := range append(slices.Clone(f.labels), f.labelAdd...) {
			k, v, err := opts.ParseLabel(l)
			if err != nil {
				return err
			}
			labels[k] = v
		}
		if len(labels) == 0 {
			labels = nil
		}
		spec.Labels = labels
	}

	// Constraints.
	for _, c := range f.constraintRm {
		canon, err := opts.ParseConstraint(c)
		if err != nil {
			canon = c
		}
		spec.Placement.Constraints = slices.DeleteFunc(spec.Placement.Constraints, func(have string) bool {
			h, err := opts.ParseConstraint(have)
			return have == c || err == nil && h == canon
		})
	}
	for _, c := range append(slices.Clone(f.constraints), f.constraintAdd...) {
		canon, err := opts.ParseConstraint(c)
		if err != nil {
			return err
		}
		if !slices.Contains(spec.Placement.Constraints, canon) {
			spec.Placement.Constraints = append(spec.Placement.Constraints, canon)
		}
	}
	if len(spec.Placement.Constraints) == 0 {
		spec.Placement.Constraints = nil
	}

	// Secrets and configs.
	for _, l := range []struct {
		kind, flag string
		add, rm    []string
		refs       *[]api.FileRef
	}{{api.KindSecret, "secret", f.secretAdd, f.secretRm, &spec.Secrets}, {api.KindConfig, "config", f.configAdd, f.configRm, &spec.Configs}} {
		if len(l.rm) > 0 {
			refs, err := opts.RemoveFileRefs(l.kind, *l.refs, l.rm)
			if err != nil {
				return fmt.Errorf("--%s-rm: %w", l.flag, err)
			}
			*l.refs = refs
		}
		for _, a := range l.add {
			r, err := opts.ParseFileRef(l.kind, a)
			if err != nil {
				return fmt.Errorf("--%s: %w", l.flag, err)
			}
			*l.refs = opts.AddFileRef(*l.refs, r)
		}
		if len(*l.refs) == 0 {
			*l.refs = nil
		}
	}

	// Ports.
	if len(f.publishRm) > 0 {
		ports, err := opts.RemovePorts(spec.Ports, f.publishRm)
		if err != nil {
			return fmt.Errorf("--publish-rm: %w", err)
		}
		spec.Ports = ports
	}
	for _, p := range append(slices.Clone(f.publish), f.publishAdd...) {
		pc, err := opts.ParsePort(p)
		if err != nil {
			return err
		}
		pc = pc.Normalized()
		// A port published again at the same place replaces the old one.
		spec.Ports = slices.DeleteFunc(spec.Ports, func(have api.PortConfig) bool { return have.Key() == pc.Key() })
		spec.Ports = append(spec.Ports, pc)
	}

	// Ingress routes: remove, add, then the middleware of the routes
	// the spec has after both.
	if len(f.ingressRm)+len(f.ingressAdd) > 0 {
		routes, err := opts.SetIngress(spec.Ingress, f.ingressRm, f.ingressAdd)
		if err != nil {
			return err
		}
		spec.Ingress = routes
	}
	for _, v := range f.ingressMW {
		m, err := opts.ParseIngressMiddleware(v)
		if err != nil {
			return err
		}
		routes, err := m.Apply(spec.Ingress, spec.Name)
		if err != nil {
			return err
		}
		spec.Ingress = routes
	}

	// Mounts.
	if len(f.mountRm)+len(f.mounts)+len(f.mountAdd) > 0 {
		mounts, err := opts.SetMounts(spec.Mounts, f.mountRm, append(slices.Clone(f.mounts), f.mountAdd...))
		if err != nil {
			return err
		}
		spec.Mounts = mounts
	}

	// Resources.
	res := &spec.Resources
	for _, m := range []struct {
		flag string
		val  string
		dst  *api.Bytes
	}{{"limit-memory", f.limitMemory, &res.Limits.MemoryBytes}, {"reserve-memory", f.reserveMemory, &res.Reservations.MemoryBytes}} {
		if set(m.flag) {
			v, err := opts.ParseMemory(m.val)
			if err != nil {
				return fmt.Errorf("--%s: %w", m.flag, err)
			}
			*m.dst = v
		}
	}
	for _, c := range []struct {
		flag string
		val  string
		dst  *api.CPUs
	}{{"limit-cpu", f.limitCPU, &res.Limits.NanoCPUs}, {"reserve-cpu", f.reserveCPU, &res.Reservations.NanoCPUs}} {
		if set(c.flag) {
			v, err := opts.ParseCPUs(c.val)
			if err != nil {
				return fmt.Errorf("--%s: %w", c.flag, err)
			}
			*c.dst = v
		}
	}

	// Restart and update policies.
	rp, uc := &spec.RestartPolicy, &spec.UpdateConfig
	if set("restart-condition") {
		rp.Condition = f.restartCondition
	}
	if set("restart-delay") {
		rp.Delay = api.Duration(f.restartDelay)
	}
	if set("restart-max-attempts") {
		rp.MaxAttempts = f.restartMaxAttempts
	}
	if set("restart-window") {
		rp.Window = api.Duration(f.restartWindow)
	}
	if set("offline-restart") {
		spec.Offline.Restart = f.offlineRestart
	}
	if set("offline-max") {
		spec.Offline.MaxOffline = api.Duration(f.maxOffline)
	}
	if set("offline-reconnect") {
		spec.Offline.OnReconnect = f.onReconnect
	}
	f.update.apply(set, "update", uc)
	// A rollback without its own policy goes as the update policy says,
	// with failureAction pause (api.Service.ActiveUpdateConfig): the first
	// rollback flag makes that policy the service's own, then changes it.
	if f.rollback.given(set, "rollback") {
		if spec.RollbackConfig == nil {
			rc := cloneSpec(spec).UpdateConfig.AsRollback()
			spec.RollbackConfig = &rc
		}
		f.rollback.apply(set, "rollback", spec.RollbackConfig)
	}
	if set("stop-grace-period") {
		spec.StopGracePeriod = api.Duration(f.stopGrace)
	}
	if set("stop-drain") {
		spec.StopDrain = api.Duration(f.stopDrain)
	}
	return nil
}

// policyFlags are the flags of one rolling-update policy: --update-* for
// UpdateConfig, --rollback-* for RollbackConfig (docker's names).
type policyFlags struct {
	parallelism     uint64
	delay, monitor  time.Duration
	failureAction   string
	maxFailureRatio float64
	order           string
	deadline        time.Duration
	// Update only: canaries and waves.
	canary, waveLabel string
	canaryFor         time.Duration
	autoPromote       bool
	waves             []string
	keepOld           time.Duration // --keep-old, the update's only
}

// policyFlagNames are the names after "update-" or "rollback-";
// progress-deadline is an update flag only, as in docker.
var policyFlagNames = []string{"parallelism", "delay", "failure-action", "monitor", "max-failure-ratio", "order", "progress-deadline",
	"canary", "canary-healthy-for", "auto-promote", "waves", "wave-label"}

func (p *policyFlags) register(cmd *cobra.Command, prefix string) {
	fs := cmd.Flags()
	monitor := "how long a new task must run (from its start), or with a health check be healthy (from its first healthy report), " +
		"to count as updated: default 5s; with a check, never less than its window (start period + interval × retries), " +
		"plus the time it takes to see a failure (interval × retries + timeout)"
	if prefix == "update" {
		fs.Uint64Var(&p.parallelism, "update-parallelism", 1, "tasks replaced at once in a rolling update (0: all)")
		fs.DurationVar(&p.delay, "update-delay", 0, "wait between batches of a rolling update")
		fs.StringVar(&p.failureAction, "update-failure-action", "", "when an update fails: pause (default), continue or rollback (to the previous spec, by the rollback policy)")
		fs.DurationVar(&p.monitor, "update-monitor", 0, monitor)
		fs.Float64Var(&p.maxFailureRatio, "update-max-failure-ratio", 0, "share of failed task updates tolerated, 0 to 1")
		fs.StringVar(&p.order, "update-order", "", "stop-first (default), start-first, or blue-green (a whole new set on standby, then traffic moves to it in one step once every new task passed the monitor)")
		fs.DurationVar(&p.keepOld, "keep-old", 0, "with --update-order blue-green: how long the old set stays running on standby after the switch, so that a rollback switches back at once (default 10m)")
		fs.DurationVar(&p.deadline, "update-progress-deadline", 0, "fail the update when no task was updated for this long (default 10m); --update-failure-action says what follows")
		fs.StringVar(&p.canary, "update-canary", "", `start N (or P%) tasks of the new spec beside the old set first; promote them with "warrenctl service promote" (or --update-auto-promote); a failed canary rolls back ("" turns canaries off)`)
		fs.DurationVar(&p.canaryFor, "update-canary-healthy-for", 0, "how long the canaries must run healthy before they can be promoted (default: the monitor)")
		fs.BoolVar(&p.autoPromote, "update-auto-promote", false, "promote the canaries once they have been healthy for --update-canary-healthy-for")
		fs.StringSliceVar(&p.waves, "update-waves", nil, "update a global service in waves of nodes, cumulative counts or shares, e.g. 1,10%,100%; a failure in a wave rolls back")
		fs.StringVar(&p.waveLabel, "update-wave-label", "", "pick the nodes of the first waves by this node label's value, lowest first")
		return
	}
	// A service without a rollback policy rolls back by its update policy:
	// the defaults are the update's.
	const asUpdate = " (default: as the update policy)"
	fs.Uint64Var(&p.parallelism, "rollback-parallelism", 0, "tasks replaced at once in a rollback (0: all)"+asUpdate)
	fs.DurationVar(&p.delay, "rollback-delay", 0, "wait between batches of a rollback"+asUpdate)
	fs.StringVar(&p.failureAction, "rollback-failure-action", "", "when a rollback fails: pause (default) or continue")
	fs.DurationVar(&p.monitor, "rollback-monitor", 0, strings.Replace(monitor, "default 5s", "default as the update policy, else 5s", 1))
	fs.Float64Var(&p.maxFailureRatio, "rollback-max-failure-ratio", 0, "share of failed task updates tolerated in a rollback, 0 to 1"+asUpdate)
	fs.StringVar(&p.order, "rollback-order", "", "stop-first, start-first or blue-green"+asUpdate)
}

// given says whether any flag of the policy is on the command line.
func (p *policyFlags) given(set func(string) bool, prefix string) bool {
	if prefix == "update" && set("keep-old") {
		return true
	}
	return slices.ContainsFunc(policyFlagNames, func(n string) bool { return set(prefix + "-" + n) })
}

// apply sets the fields of uc whose flags are given.
func (p *policyFlags) apply(set func(string) bool, prefix string, uc *api.UpdateConfig) {
	if set(prefix + "-parallelism") {
		n := p.parallelism
		uc.Parallelism = &n
	}
	if set(prefix + "-delay") {
		uc.Delay = api.Duration(p.delay)
	}
	if set(prefix + "-failure-action") {
		uc.FailureAction = p.failureAction
	}
	if set(prefix + "-monitor") {
		uc.Monitor = api.Duration(p.monitor)
	}
	if set(prefix + "-max-failure-ratio") {
		uc.MaxFailureRatio = p.maxFailureRatio
	}
	if set(prefix + "-order") {
		uc.Order = p.order
	}
	if set(prefix + "-progress-deadline") {
		uc.ProgressDeadline = api.Duration(p.deadline)
	}
	if set(prefix + "-canary") {
		uc.Canary = p.canary
	}
	if set(prefix + "-canary-healthy-for") {
		uc.CanaryHealthyFor = api.Duration(p.canaryFor)
	}
	if set(prefix + "-auto-promote") {
		uc.AutoPromote = p.autoPromote
	}
	if set(prefix + "-waves") {
		uc.Waves = p.waves
	}
	if set(prefix + "-wave-label") {
		uc.WaveLabel = p.waveLabel
	}
	if prefix == "update" && set("keep-old") {
		uc.KeepOld = api.Duration(p.keepOld)
	}
}

// cloneSpec deep-copies a spec.
func cloneSpec(s *api.ServiceSpec) api.ServiceSpec {
	var out api.ServiceSpec
	b, err := json.Marshal(s)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		panic("cli: copy spec: " + err.Error())
	}
	return out
}
