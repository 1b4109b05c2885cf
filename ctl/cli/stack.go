package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/compose"
	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// stack: Compose files deployed as one deployment (POST /v1/deployments),
// docker stack habits. A stack is the set of services labelled
// warren.stack=NAME; the secrets, configs and volumes a deploy made carry
// the same label.

func (s *session) stackCmd() *cobra.Command {
	cmd := groupCmd("stack", "Deploy and manage stacks of services from Compose files",
		`A stack is a set of services deployed together from one or more Compose
files (compose.yaml, docker-stack.yml): warrenctl stack deploy makes the
services, secrets, configs and volumes the files declare, named
STACK-NAME and labelled warren.stack=STACK, and changes the services as
one deployment: all of them or none, and if the update of one fails and
rolls back, the others roll back with it.

Warren runs the part of Compose that it can honour (image, command,
entrypoint, environment, env_file, ports, healthcheck, labels, deploy:
mode, replicas, placement constraints, resources, restart_policy,
update_config, rollback_config; secrets, configs, volumes and bind
mounts). Every other key a file sets is named in one warning line, or
refused with --strict.

Inside a stack, services find each other by their Warren name
(STACK-NAME), not by their Compose name: Warren's DNS has one name per
service.`)
	cmd.AddCommand(s.stackDeployCmd(), s.stackLsCmd(), s.stackServicesCmd(), s.stackPsCmd(), s.stackRmCmd())
	return cmd
}

func (s *session) stackDeployCmd() *cobra.Command {
	var files []string
	var strict, prune, dryRun bool
	var w waitOpts
	cmd := &cobra.Command{
		Use:     "deploy -c FILE [-c FILE...] [--prune] [--strict] NAME",
		Aliases: []string{"up"},
		Short:   "Create or change a stack's services to match Compose files",
		Long: `Deploy the Compose files as stack NAME. Several -c files are merged
in order, as docker compose -f does; variables are taken from the
environment and from the .env file beside the first file.

First the secrets and configs with file: and the named volumes that the
services use are created, as STACK-NAME, if they do not exist (an
existing one is kept as it is: change a secret with warrenctl secret
update); those marked external: true must exist. Then every service is
created, updated or left alone in one deployment, and one line says
which: service/NAME created, updated, unchanged, resumed (a service of
a failed deploy, whose update paused, deployed again unchanged: its
update starts again) or, with --prune, removed (a service of the stack
that the files no longer have).

Then deploy follows the whole deployment: every created or changed
service, slot by slot (redrawn in place on a terminal, a line per change
otherwise), until each runs as the files say. If a service's update
fails and rolls back, the deployment's other services roll back with it
(those it created, which have nothing to roll back to, pause), and
deploy exits non-zero, saying why for each service; warrenctl stack ps
NAME shows where each stands. -d returns at once: the deployment goes on
in the cluster.`,
		Example: `  warrenctl stack deploy -c compose.yaml shop
  warrenctl stack deploy -c compose.yaml -c prod.yaml --prune shop
  warrenctl stack deploy -c docker-stack.yml --strict --dry-run vote`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return usagef(cmd, "give the Compose files with -c FILE")
			}
			name := args[0]
			if err := api.ValidateStackName(name); err != nil {
				return usagef(cmd, "%v", err)
			}
			ctx := cmd.Context()
			st, err := compose.Load(ctx, files, name, compose.Options{})
			if err != nil {
				return fmt.Errorf("%w\nNothing was deployed: fix the file and deploy again", err)
			}
			for _, n := range st.Notes {
				s.progressf("warning: %s", n)
			}
			if strict && len(st.Unsupported) > 0 {
				return fmt.Errorf("%s sets what Warren does not support (--strict):\n  %s\nNothing was deployed: remove these keys, or deploy without --strict to ignore them",
					strings.Join(files, ", "), strings.Join(st.Unsupported, "\n  "))
			}
			for _, k := range st.Unsupported {
				s.progressf("warning: %s is not supported and was ignored", k)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			toMake, err := s.stackObjects(cmd, c, st, dryRun)
			if err != nil {
				return err
			}
			req := api.DeploymentRequest{Name: name, Services: st.Services, Prune: prune}
			if dryRun && len(toMake) > 0 {
				// The manager refuses a spec that uses what does not
				// exist yet: its dry run checks the specs without them.
				req.Services = withoutMissing(st.Services, toMake)
				s.progressf("dry run: the manager checks the services without what the deploy would create first")
			}
			var d *api.Deployment
			if dryRun {
				d, err = c.DeployDryRun(ctx, req)
			} else {
				d, err = c.Deploy(ctx, req)
			}
			if err != nil {
				return err
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			for _, it := range d.Services {
				fmt.Fprintf(s.out(), "service/%s %s%s\n", it.Name, it.Action, suffix)
			}
			if dryRun {
				return nil
			}
			return s.convergeMany(ctx, deployed(d), w)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "compose-file", "c", nil, "a Compose file (several are merged in order)")
	cmd.MarkFlagFilename("compose-file", "yaml", "yml")
	cmd.Flags().BoolVar(&strict, "strict", false, "refuse files that set keys Warren does not support, instead of warning")
	cmd.Flags().BoolVar(&prune, "prune", false, "remove the stack's services that the files no longer have")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check everything and show what would change, and change nothing")
	addWaitFlags(cmd, &w)
	return cmd
}

// stackObjects makes the secrets, configs and volumes of the stack that
// are missing, after checking that the external ones exist, and returns
// what it made (on a dry run: would make), by kind and name.
func (s *session) stackObjects(cmd *cobra.Command, c *client.Client, st *compose.Stack, dryRun bool) (map[string]map[string]bool, error) {
	ctx := cmd.Context()
	have := map[string]map[string]bool{api.KindSecret: {}, api.KindConfig: {}, api.KindVolume: {}}
	if len(st.Secrets) > 0 {
		items, err := c.Secrets(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			have[api.KindSecret][it.Spec.Name] = true
		}
	}
	if len(st.Configs) > 0 {
		items, err := c.Configs(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			have[api.KindConfig][it.Spec.Name] = true
		}
	}
	if len(st.Volumes) > 0 {
		vols, err := c.Volumes(ctx, client.ReadOptions{})
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			have[api.KindVolume][v.Spec.Name] = true
		}
	}
	type object struct {
		kind, name, file string
		external         bool
	}
	var objs []object
	for _, f := range st.Secrets {
		objs = append(objs, object{api.KindSecret, f.Name, f.File, f.External})
	}
	for _, f := range st.Configs {
		objs = append(objs, object{api.KindConfig, f.Name, f.File, f.External})
	}
	for _, v := range st.Volumes {
		objs = append(objs, object{kind: api.KindVolume, name: v.Name, external: v.External})
	}
	var missing []string
	for _, o := range objs {
		if o.external && !have[o.kind][o.name] {
			missing = append(missing, fmt.Sprintf("%s %s (external)", o.kind, o.name))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("stack %s uses what does not exist: %s\nNothing was deployed: create them first (warrenctl secret create, config create, volume create)", st.Name, strings.Join(missing, ", "))
	}
	labels := map[string]string{api.LabelStack: st.Name}
	made := map[string]map[string]bool{}
	for _, o := range objs {
		if o.external || have[o.kind][o.name] {
			continue
		}
		if made[o.kind] == nil {
			made[o.kind] = map[string]bool{}
		}
		made[o.kind][o.name] = true
		if dryRun {
			fmt.Fprintf(s.out(), "%s/%s created (dry run)\n", o.kind, o.name)
			continue
		}
		var err error
		switch o.kind {
		case api.KindVolume:
			_, err = c.CreateVolume(ctx, api.VolumeSpec{Name: o.name, Labels: labels})
		default:
			var data []byte
			if data, err = s.readValue(o.kind, o.file); err == nil {
				_, err = c.CreateFile(ctx, o.kind, api.SecretRequest{Name: o.name, Labels: labels, Data: data})
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stack %s: create %s %s: %w", st.Name, o.kind, o.name, err)
		}
		fmt.Fprintf(s.out(), "%s/%s created\n", o.kind, o.name)
	}
	return made, nil
}

// withoutMissing is specs without the secrets, configs and volume mounts
// named in missing (by kind).
func withoutMissing(specs []api.ServiceSpec, missing map[string]map[string]bool) []api.ServiceSpec {
	out := make([]api.ServiceSpec, len(specs))
	for i, sp := range specs {
		drop := func(kind string) func(api.FileRef) bool {
			return func(r api.FileRef) bool { return missing[kind][r.Name] }
		}
		sp.Secrets = slices.DeleteFunc(slices.Clone(sp.Secrets), drop(api.KindSecret))
		sp.Configs = slices.DeleteFunc(slices.Clone(sp.Configs), drop(api.KindConfig))
		sp.Mounts = slices.DeleteFunc(slices.Clone(sp.Mounts), func(m api.Mount) bool {
			return m.Type == api.MountVolume && missing[api.KindVolume][m.Source]
		})
		out[i] = sp
	}
	return out
}

// deployed is the services a deployment created or changed, as it
// returned them, for convergeMany.
func deployed(d *api.Deployment) []*api.Service {
	var out []*api.Service
	for _, it := range d.Services {
		if it.Service != nil && (it.Action == api.DeployCreated || it.Action == api.DeployUpdated || it.Action == api.DeployResumed) {
			out = append(out, it.Service)
		}
	}
	return out
}

// stackServices lists the services of stack name (all stacks if "").
func stackServices(cmd *cobra.Command, c *client.Client, name string) ([]api.Service, error) {
	all, err := c.Services(cmd.Context(), client.ReadOptions{})
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(sv api.Service) bool {
		st, ok := sv.Spec.Labels[api.LabelStack]
		return !ok || (name != "" && st != name)
	})
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("no stack %q: it has no services; list stacks with warrenctl stack ls", name)
	}
	slices.SortFunc(out, func(a, b api.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}

func (s *session) stackLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List stacks",
		Long:    `List the stacks (the values of the warren.stack label of services) and how many services each has.`,
		Example: `  warrenctl stack ls`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			svcs, err := stackServices(cmd, c, "")
			if err != nil {
				return err
			}
			count := map[string]int{}
			for _, sv := range svcs {
				count[sv.Spec.Labels[api.LabelStack]]++
			}
			var rows [][]string
			for _, n := range slices.Sorted(maps.Keys(count)) {
				rows = append(rows, []string{n, strconv.Itoa(count[n])})
			}
			return format.WriteTable(s.out(), []string{"NAME", "SERVICES"}, rows)
		},
	}
}

func (s *session) stackServicesCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "services NAME",
		Short: "List the services of a stack",
		Long:  `List the services of a stack as warrenctl service ls does.`,
		Example: `  warrenctl stack services shop
  warrenctl stack services -q shop`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			svcs, err := stackServices(cmd, c, args[0])
			if err != nil {
				return err
			}
			if quiet {
				for _, sv := range svcs {
					fmt.Fprintln(s.out(), sv.ID)
				}
				return nil
			}
			tasks, err := c.Tasks(cmd.Context(), client.TaskQuery{})
			if err != nil {
				return err
			}
			return format.ServiceTable(s.out(), svcs, tasks)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print service IDs")
	return cmd
}

func (s *session) stackPsCmd() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "ps NAME",
		Short: "List the tasks of a stack, and its services' updates",
		Long: `List the tasks of a stack's services as warrenctl service ps does, then
each service's last update: its state (updating, paused, completed,
rolling-back, rolled-back), the deployment it belongs to and why it
stopped, if it did.`,
		Example: `  warrenctl stack ps shop`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			svcs, err := stackServices(cmd, c, args[0])
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context(), client.ReadOptions{})
			if err != nil {
				return err
			}
			var tasks []api.Task
			var rows [][]string
			for _, sv := range svcs {
				ts, err := c.Tasks(cmd.Context(), client.TaskQuery{Service: sv.ID})
				if err != nil {
					return err
				}
				tasks = append(tasks, ts...)
				if st := sv.UpdateStatus; st != nil {
					rows = append(rows, []string{sv.Spec.Name, st.State, st.Deployment, st.Message})
				}
			}
			if err := format.TaskTable(s.out(), tasks, hostnames(nodes), s.now(), noTrunc); err != nil {
				return err
			}
			if len(rows) == 0 {
				return nil
			}
			fmt.Fprintln(s.out())
			return format.WriteTable(s.out(), []string{"SERVICE", "UPDATE", "DEPLOYMENT", "MESSAGE"}, rows)
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten IDs, images and errors")
	return cmd
}

func (s *session) stackRmCmd() *cobra.Command {
	var secrets, volumes bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove", "down"},
		Short:   "Remove a stack's services",
		Long: `Remove the services of a stack. The secrets, configs and volumes that
stack deploy made are kept, unless --secrets (secrets and configs) or
--volumes (volumes, and the data in them) says to remove them too; those
marked external in the files were never the stack's and are kept. A
volume is removed once the tasks that mount it have stopped (rm waits
up to --timeout for that).`,
		Example: `  warrenctl stack rm shop
  warrenctl stack rm --secrets --volumes shop`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			c, err := s.client()
			if err != nil {
				return err
			}
			svcs, err := stackServices(cmd, c, name)
			if err != nil && !(secrets || volumes) {
				return err
			}
			var errs multiError
			for _, sv := range svcs {
				if err := c.RemoveService(ctx, sv.ID, 0); err != nil && !api.NotFound(err) {
					errs = append(errs, fmt.Errorf("service %s: %w", sv.Spec.Name, err))
					continue
				}
				fmt.Fprintf(s.out(), "service/%s removed\n", sv.Spec.Name)
			}
			ours := func(l map[string]string) bool { return l[api.LabelStack] == name }
			if secrets {
				for _, kind := range []string{api.KindSecret, api.KindConfig} {
					var items []api.Secret
					if kind == api.KindSecret {
						items, err = c.Secrets(ctx)
					} else {
						var cs []api.Config
						cs, err = c.Configs(ctx)
						for _, it := range cs {
							items = append(items, api.Secret(it))
						}
					}
					if err != nil {
						return err
					}
					for _, it := range items {
						if !ours(it.Spec.Labels) {
							continue
						}
						if err := c.RemoveFile(ctx, kind, it.ID); err != nil {
							errs = append(errs, fmt.Errorf("%s %s: %w", kind, it.Spec.Name, err))
							continue
						}
						fmt.Fprintf(s.out(), "%s/%s removed\n", kind, it.Spec.Name)
					}
				}
			}
			if volumes {
				vols, err := c.Volumes(ctx, client.ReadOptions{})
				if err != nil {
					return err
				}
				for _, v := range vols {
					if !ours(v.Spec.Labels) {
						continue
					}
					if err := s.removeVolumeOnceFree(cmd, c, v.Spec.Name, timeout); err != nil {
						errs = append(errs, fmt.Errorf("volume %s: %w", v.Spec.Name, err))
						continue
					}
					fmt.Fprintf(s.out(), "volume/%s removed\n", v.Spec.Name)
				}
			}
			if len(svcs) == 0 && len(errs) == 0 {
				s.progressf("stack %s had no services", name)
			}
			return errs.err()
		},
	}
	cmd.Flags().BoolVar(&secrets, "secrets", false, "also remove the secrets and configs the stack made")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove the volumes the stack made, with their data")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "with --volumes, how long to wait for the tasks that mount them to stop")
	return cmd
}

// removeVolumeOnceFree removes a volume, waiting while the tasks of
// removed services that mount it are still stopping (the manager refuses
// with a conflict until then).
func (s *session) removeVolumeOnceFree(cmd *cobra.Command, c *client.Client, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	said := false
	for {
		err := c.RemoveVolume(ctx, name)
		if !api.IsCode(err, api.CodeConflict) {
			return err
		}
		if !said {
			s.progressf("volume %s: waiting for the tasks that mount it to stop", name)
			said = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still, after %s)", err, timeout)
		case <-time.After(s.app.PollEvery):
		}
	}
}
