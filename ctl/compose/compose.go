// Package compose reads Compose files (the Compose Specification, with
// compose-go's loader: several files merged, variables interpolated from
// the environment and .env, paths resolved against the first file's
// folder) and turns them into what warrenctl stack deploy sends: Warren
// service specs, and the secrets, configs and volumes they use.
//
// A stack's objects are named STACK-NAME (a Compose service "web" of stack
// "shop" is the service "shop-web"; '_' and '.' become '-', since a
// service's name is a DNS label) and labelled warren.stack=STACK.
//
// The part of Compose that Warren can honour is converted; every other key
// that the files set is named in Stack.Unsupported, one key path each
// (services.web.build), for the caller to warn about or refuse. What is
// converted differently from Docker:
//
//   - services.X.labels and deploy.labels both become the service's labels
//     (Warren has no container labels);
//   - a port without a published port is published on its target port (no
//     random ports);
//   - a port bound to a host_ip is published in host mode;
//   - deploy.resources.limits.pids becomes the service's pids limit.
//
// One extension key of a service is Warren's: x-warren-ingress, a list of
// HTTP ingress routes in the shape of a manifest's ingress list
// (api.IngressRoute's YAML), becomes the service's routes.
package compose

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/warren-edge/warren/daemons/api"
)

// Stack is what a set of Compose files declares, in Warren's terms.
type Stack struct {
	Name     string
	Services []api.ServiceSpec
	// Secrets and Configs the services use: a file one is created (as
	// Name, from File) when missing; an external one must exist.
	Secrets []File
	Configs []File
	// Volumes the services mount by name: created when missing, unless
	// external.
	Volumes []Volume
	// Unsupported names each key the files set that Warren does not
	// honour, as a path (services.web.build), sorted.
	Unsupported []string
	// Notes are the loader's own warnings (a variable that is not set,
	// an obsolete key), in its words.
	Notes []string
}

// File is a secret or config of the stack.
type File struct {
	Name     string // Warren's name
	File     string // the file with its value, for one the stack creates
	External bool
}

// Volume is a named volume of the stack.
type Volume struct {
	Name     string // Warren's name
	External bool
}

// Options say how to load the files.
type Options struct {
	// Environ is the environment variables are taken from (KEY=VALUE);
	// nil means the process's. The .env file of the first file's folder
	// is read too, as docker compose does.
	Environ []string
}

// Load reads the Compose files as stack name.
func Load(ctx context.Context, files []string, name string, o Options) (*Stack, error) {
	if len(files) == 0 {
		return nil, errors.New("compose: no file given")
	}
	if err := api.ValidateStackName(name); err != nil {
		return nil, err
	}
	where := files[0]
	dir := filepath.Dir(where)
	env := o.Environ
	if env == nil {
		env = os.Environ()
	}
	notes := captureLoaderLog()
	defer notes.stop()
	po, err := cli.NewProjectOptions(files, cli.WithName(name), cli.WithWorkingDirectory(dir), cli.WithEnv(env), cli.WithEnvFiles(), cli.WithDotEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	// The model, without the loader's normalisation (which adds names and
	// networks no one wrote), says which keys were set. (Not through
	// LoadModel: it interpolates without the environment.)
	details, err := po.ReadConfigFiles(ctx, dir, po)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	details.Environment = po.Environment
	model, err := loader.LoadModelWithContext(ctx, *details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		o.SkipNormalization = true
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	st := &Stack{Name: name, Unsupported: unsupported(model), Notes: notes.list()}
	if err := st.convert(p, where); err != nil {
		return nil, err
	}
	return st, nil
}

// ObjectName is the Warren name of a stack's service, secret, config or
// volume: STACK-NAME, with '_' and '.' made '-' and in lower case.
func ObjectName(stack, name string) string {
	n := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name))
	return stack + "-" + n
}

func (st *Stack) convert(p *types.Project, where string) error {
	var problems []string
	names := map[string]string{} // Warren name → Compose name
	files := func(kind string, defs map[string]types.FileObjectConfig) (map[string]string, []File) {
		ref := map[string]string{}
		var out []File
		for _, k := range slices.Sorted(maps.Keys(defs)) {
			d := defs[k]
			f := File{Name: ObjectName(st.Name, k)}
			switch {
			case bool(d.External):
				f.Name, f.External = cmp.Or(d.Name, k), true
			case d.File != "":
				f.File = d.File
			default:
				problems = append(problems, fmt.Sprintf("%s: %ss.%s: only a %s with file: or external: true is supported", where, kind, k, kind))
				continue
			}
			ref[k] = f.Name
			out = append(out, f)
		}
		return ref, out
	}
	secrets, configs := map[string]types.FileObjectConfig{}, map[string]types.FileObjectConfig{}
	for k, v := range p.Secrets {
		secrets[k] = types.FileObjectConfig(v)
	}
	for k, v := range p.Configs {
		configs[k] = types.FileObjectConfig(v)
	}
	secretNames, secretList := files(api.KindSecret, secrets)
	configNames, configList := files(api.KindConfig, configs)
	volumeNames := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(p.Volumes)) {
		v := p.Volumes[k]
		vol := Volume{Name: ObjectName(st.Name, k)}
		if v.External {
			vol = Volume{Name: cmp.Or(v.Name, k), External: true}
		}
		volumeNames[k] = vol.Name
		st.Volumes = append(st.Volumes, vol)
	}
	usedSecrets, usedConfigs, usedVolumes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(p.Services)) {
		svc := p.Services[k]
		spec, errs := st.service(k, &svc, secretNames, configNames, volumeNames)
		for _, r := range spec.Secrets {
			usedSecrets[r.Name] = true
		}
		for _, r := range spec.Configs {
			usedConfigs[r.Name] = true
		}
		for _, n := range spec.VolumeNames() {
			usedVolumes[n] = true
		}
		if prev, ok := names[spec.Name]; ok {
			errs = append(errs, fmt.Sprintf("its name in Warren, %s, is also service %s's: rename one", spec.Name, prev))
		}
		names[spec.Name] = k
		if len(errs) == 0 {
			api.NormalizeSpec(&spec)
			if err := api.ValidateServiceSpec(&spec); err != nil {
				errs = append(errs, strings.ReplaceAll(err.Error(), "\n  ", "\n    "))
			}
		}
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("%s: services.%s: %s", where, k, e))
		}
		st.Services = append(st.Services, spec)
	}
	// Only what a service uses is made (as docker stack deploy does).
	for _, f := range secretList {
		if usedSecrets[f.Name] {
			st.Secrets = append(st.Secrets, f)
		}
	}
	for _, f := range configList {
		if usedConfigs[f.Name] {
			st.Configs = append(st.Configs, f)
		}
	}
	st.Volumes = slices.DeleteFunc(st.Volumes, func(v Volume) bool { return !usedVolumes[v.Name] })
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// service converts one Compose service; it returns the problems that
// make it impossible, each without the file and service prefix.
func (st *Stack) service(name string, s *types.ServiceConfig, secrets, configs, volumes map[string]string) (api.ServiceSpec, []string) {
	var errs []string
	spec := api.ServiceSpec{
		Name:       ObjectName(st.Name, name),
		Image:      s.Image,
		Command:    []string(s.Entrypoint),
		Args:       []string(s.Command),
		WorkingDir: s.WorkingDir,
		User:       s.User,
		ReadOnly:   s.ReadOnly,
		CapAdd:     s.CapAdd,
		CapDrop:    s.CapDrop,
		PidsLimit:  s.PidsLimit,
		Replicas:   1,
		Labels:     map[string]string{},
	}
	maps.Copy(spec.Labels, s.Labels)
	if s.StopGracePeriod != nil {
		spec.StopGracePeriod = api.Duration(*s.StopGracePeriod)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		if v := s.Environment[k]; v != nil { // unset, and not in the environment: left out, as compose does
			spec.Env = append(spec.Env, k+"="+*v)
		}
	}
	for _, p := range s.Ports {
		pc, err := port(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		spec.Ports = append(spec.Ports, pc)
	}
	if hc := s.HealthCheck; hc != nil {
		h, err := health(hc)
		if err != nil {
			errs = append(errs, err.Error())
		}
		spec.HealthCheck = h
	}
	if d := s.Deploy; d != nil {
		errs = append(errs, deploy(&spec, d)...)
	}
	if x, ok := s.Extensions[ExtIngress]; ok {
		routes, err := ingress(x)
		if err != nil {
			errs = append(errs, err.Error())
		}
		spec.Ingress = routes
	}
	spec.Labels[api.LabelStack] = st.Name
	refs := func(kind string, defined map[string]string, src []types.FileReferenceConfig) []api.FileRef {
		var out []api.FileRef
		for _, r := range src {
			n, ok := defined[r.Source]
			if !ok {
				errs = append(errs, fmt.Sprintf("%ss: %s %q is not defined at the top level (%ss: %s: file: or external: true)", kind, kind, r.Source, kind, r.Source))
				continue
			}
			ref := api.FileRef{Name: n, Target: r.Target}
			if ref.Target == "" && kind == api.KindConfig {
				ref.Target = "/" + r.Source
			}
			if ref.Target == "" && kind == api.KindSecret {
				ref.Target = r.Source // under /run/secrets, by its Compose name
			}
			for _, id := range []struct {
				v   string
				dst *uint32
				f   string
			}{{r.UID, &ref.UID, "uid"}, {r.GID, &ref.GID, "gid"}} {
				if id.v == "" {
					continue
				}
				n, err := strconv.ParseUint(id.v, 10, 32)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%ss: %s %s: %q is not a number", kind, r.Source, id.f, id.v))
				}
				*id.dst = uint32(n)
			}
			if r.Mode != nil {
				ref.Mode = api.FileMode(*r.Mode)
			}
			out = append(out, ref)
		}
		return out
	}
	var sec, cfg []types.FileReferenceConfig
	for _, r := range s.Secrets {
		sec = append(sec, types.FileReferenceConfig(r))
	}
	for _, r := range s.Configs {
		cfg = append(cfg, types.FileReferenceConfig(r))
	}
	spec.Secrets = refs(api.KindSecret, secrets, sec)
	spec.Configs = refs(api.KindConfig, configs, cfg)
	for _, v := range s.Volumes {
		m, err := mount(v, volumes)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	return spec, errs
}

func port(p types.ServicePortConfig) (api.PortConfig, error) {
	pc := api.PortConfig{Target: uint16(p.Target), Protocol: p.Protocol, Mode: p.Mode, HostAddr: p.HostIP}
	if p.Target > 65535 {
		return pc, fmt.Errorf("ports: target %d is not a port", p.Target)
	}
	if p.Published != "" {
		n, err := strconv.ParseUint(p.Published, 10, 16)
		if err != nil {
			return pc, fmt.Errorf("ports: published %q: only one port is supported, not a range", p.Published)
		}
		pc.Published = uint16(n)
	}
	if pc.HostAddr != "" && pc.Mode == api.PortModeIngress {
		pc.Mode = "" // compose's default; only host mode binds one address
	}
	return pc, nil
}

func health(hc *types.HealthCheckConfig) (*api.HealthCheck, error) {
	if hc.Disable || (len(hc.Test) > 0 && hc.Test[0] == "NONE") {
		return nil, nil
	}
	h := &api.HealthCheck{Type: api.HealthExec}
	switch {
	case len(hc.Test) == 0:
		return nil, errors.New("healthcheck: a test is needed (test: [CMD, ...] or [CMD-SHELL, ...]); Warren has no image health checks")
	case hc.Test[0] == "CMD" && len(hc.Test) > 1:
		h.Command = slices.Clone(hc.Test[1:])
	case hc.Test[0] == "CMD-SHELL" && len(hc.Test) == 2:
		h.Command = []string{"/bin/sh", "-c", hc.Test[1]}
	default:
		return nil, fmt.Errorf("healthcheck: test %q: use [CMD, ARG...], [CMD-SHELL, COMMAND] or NONE", []string(hc.Test))
	}
	dur := func(d *types.Duration) api.Duration {
		if d == nil {
			return 0
		}
		return api.Duration(*d)
	}
	h.Interval, h.Timeout, h.StartPeriod = dur(hc.Interval), dur(hc.Timeout), dur(hc.StartPeriod)
	if hc.Retries != nil {
		h.Retries = *hc.Retries
	}
	return h, nil
}

func deploy(spec *api.ServiceSpec, d *types.DeployConfig) []string {
	var errs []string
	switch d.Mode {
	case "", "replicated":
		spec.Mode = api.ModeReplicated
	case "global":
		spec.Mode, spec.Replicas = api.ModeGlobal, 0
	default:
		errs = append(errs, fmt.Sprintf("deploy.mode: %q is not supported: use replicated or global", d.Mode))
	}
	if d.Replicas != nil && spec.Mode != api.ModeGlobal {
		if *d.Replicas < 0 {
			errs = append(errs, fmt.Sprintf("deploy.replicas: %d is negative", *d.Replicas))
		} else {
			spec.Replicas = uint64(*d.Replicas)
		}
	}
	maps.Copy(spec.Labels, d.Labels)
	spec.Placement.Constraints = d.Placement.Constraints
	amounts := func(r *types.Resource) api.ResourceAmounts {
		if r == nil {
			return api.ResourceAmounts{}
		}
		return api.ResourceAmounts{NanoCPUs: api.CPUs(float64(r.NanoCPUs) * 1e9), MemoryBytes: api.Bytes(r.MemoryBytes)}
	}
	spec.Resources = api.Resources{Limits: amounts(d.Resources.Limits), Reservations: amounts(d.Resources.Reservations)}
	if l := d.Resources.Limits; l != nil && l.Pids != 0 {
		spec.PidsLimit = l.Pids
	}
	if r := d.RestartPolicy; r != nil {
		spec.RestartPolicy.Condition = r.Condition
		if r.Delay != nil {
			spec.RestartPolicy.Delay = api.Duration(*r.Delay)
		}
		if r.MaxAttempts != nil {
			spec.RestartPolicy.MaxAttempts = *r.MaxAttempts
		}
		if r.Window != nil {
			spec.RestartPolicy.Window = api.Duration(*r.Window)
		}
	}
	if d.UpdateConfig != nil {
		spec.UpdateConfig = updateConfig(d.UpdateConfig)
	}
	if d.RollbackConfig != nil {
		u := updateConfig(d.RollbackConfig)
		spec.RollbackConfig = &u
	}
	return errs
}

func updateConfig(u *types.UpdateConfig) api.UpdateConfig {
	out := api.UpdateConfig{
		Delay:         api.Duration(u.Delay),
		FailureAction: u.FailureAction,
		Monitor:       api.Duration(u.Monitor),
		// float32 → float64 through its decimal form: 0.1 stays 0.1.
		MaxFailureRatio: float64From32(u.MaxFailureRatio),
		Order:           u.Order,
	}
	if u.Parallelism != nil {
		p := *u.Parallelism
		out.Parallelism = &p
	}
	return out
}

func float64From32(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

func mount(v types.ServiceVolumeConfig, volumes map[string]string) (api.Mount, error) {
	m := api.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
	switch v.Type {
	case types.VolumeTypeVolume:
		if v.Source == "" {
			return m, fmt.Errorf("volumes: %s: an anonymous volume is not supported: name it (NAME:%s) and declare it under the top-level volumes", v.Target, v.Target)
		}
		n, ok := volumes[v.Source]
		if !ok {
			return m, fmt.Errorf("volumes: volume %q is not declared under the top-level volumes", v.Source)
		}
		m.Type, m.Source = api.MountVolume, n
	case types.VolumeTypeBind:
		m.Type, m.Source = api.MountBind, v.Source
	case types.VolumeTypeTmpfs:
		m.Type = api.MountTmpfs
		if v.Tmpfs != nil {
			m.Size = api.Bytes(v.Tmpfs.Size)
			if v.Tmpfs.Mode != 0 {
				m.Mode = strconv.FormatUint(uint64(v.Tmpfs.Mode), 8)
			}
		}
	default:
		return m, fmt.Errorf("volumes: %s: type %q is not supported: use volume, bind or tmpfs", v.Target, v.Type)
	}
	return m, nil
}

// ExtIngress is the service extension key that holds its ingress routes.
const ExtIngress = "x-warren-ingress"

// ingress reads the value of x-warren-ingress, as the loader left it, as
// a list of routes; a key a route does not have is refused. A value the
// loader interpolated is a string ("${PORT}" gives "8080"): it is read
// again as YAML reads a plain number or boolean, so that it can be a port.
func ingress(x any) ([]api.IngressRoute, error) {
	var n yaml.Node
	err := n.Encode(x)
	var raw []byte
	if err == nil {
		replain(&n)
		raw, err = yaml.Marshal(&n)
	}
	if err == nil {
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		var routes []api.IngressRoute
		if err = dec.Decode(&routes); err == nil || errors.Is(err, io.EOF) {
			return routes, nil
		}
	}
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok {
		msg = strings.Join(te.Errors, "; ")
	}
	return nil, fmt.Errorf("%s: not a list of routes (- host: shop.example.com, port: 8080, ...): %s", ExtIngress, strings.TrimPrefix(msg, "yaml: "))
}

// replain makes every string scalar under n that reads as a number or a
// boolean a plain one, so that it is read as one.
func replain(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		var v any
		if yaml.Unmarshal([]byte(n.Value), &v) == nil {
			switch v.(type) {
			case int, int64, uint64, float64, bool:
				n.Tag, n.Style = "", 0
			}
		}
	}
	for _, c := range n.Content {
		replain(c)
	}
}
