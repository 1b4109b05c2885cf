package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/ctl/opts"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) serviceCmd() *cobra.Command {
	cmd := groupCmd("service", "Manage services",
		`A service is a container image run as N replicas (or one task per node,
with --mode global) on the fleet, with ports, limits, placement
constraints and a rolling-update policy. The commands follow
"docker service".`)
	cmd.AddCommand(s.serviceCreateCmd(), s.serviceLsCmd(), s.servicePsCmd(), s.serviceInspectCmd(),
		s.serviceScaleCmd(), s.serviceUpdateCmd(), s.serviceRollbackCmd(), s.servicePromoteCmd(), s.serviceRmCmd(), s.serviceLogsCmd(), s.serviceExecCmd())
	return cmd
}

func (s *session) serviceLsCmd() *cobra.Command {
	var out outputFlag
	var quiet bool
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services",
		Long: `List the services with their replicas as "running/wanted" (a global
service wants one task per eligible node) and their published ports.
A rolling update in progress shows after the replicas, e.g. "2/3 (updating)".`,
		Example: `  warrenctl service ls
  warrenctl service ls -q
  warrenctl service ls -f name=web -o yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			match, err := serviceFilter(cmd, filters)
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			all, err := c.Services(cmd.Context(), client.ReadOptions{})
			if err != nil {
				return err
			}
			services := slices.DeleteFunc(all, func(sv api.Service) bool { return !match(&sv) })
			slices.SortFunc(services, func(a, b api.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
			if done, err := listed(s.out(), &out, services, quiet, func(sv api.Service) string { return sv.ID }); done {
				return err
			}
			tasks, err := c.Tasks(cmd.Context(), client.TaskQuery{})
			if err != nil {
				return err
			}
			return format.ServiceTable(s.out(), services, tasks)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print service IDs")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: name=PREFIX, mode=replicated|global, label=KEY[=VALUE]")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func serviceFilter(cmd *cobra.Command, filters []string) (func(*api.Service) bool, error) {
	var tests []func(*api.Service) bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, usagef(cmd, "filter %q is not KEY=VALUE, e.g. -f name=web", f)
		}
		switch k {
		case "name":
			tests = append(tests, func(sv *api.Service) bool { return strings.HasPrefix(sv.Spec.Name, v) })
		case "id":
			tests = append(tests, func(sv *api.Service) bool { return strings.HasPrefix(sv.ID, v) })
		case "mode":
			tests = append(tests, func(sv *api.Service) bool { return format.Mode(&sv.Spec) == v })
		case "label":
			lk, lv, withVal := strings.Cut(v, "=")
			tests = append(tests, func(sv *api.Service) bool {
				have, ok := sv.Spec.Labels[lk]
				return ok && (!withVal || have == lv)
			})
		default:
			return nil, usagef(cmd, "filter %q: the filters are name, id, mode and label", f)
		}
	}
	return func(sv *api.Service) bool {
		for _, t := range tests {
			if !t(sv) {
				return false
			}
		}
		return true
	}, nil
}

func (s *session) servicePsCmd() *cobra.Command {
	var out outputFlag
	var quiet, noTrunc bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "ps SERVICE [SERVICE...]",
		Short: "List the tasks of one or more services",
		Long: `List the tasks of services: where each runs, what it should do (DESIRED
STATE) and what it does (CURRENT STATE). Tasks a slot had before are
listed under the newest one as " \_ web.1". ERROR shows why a task
failed or, for a pending task, why no node takes it.`,
		Example: `  warrenctl service ps web
  warrenctl service ps -f desired-state=running web api
  warrenctl service ps --no-trunc -o json web`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context(), client.ReadOptions{})
			if err != nil {
				return err
			}
			match, err := taskFilter(cmd, filters, nodes)
			if err != nil {
				return err
			}
			var tasks []api.Task
			var errs multiError
			for _, ref := range args {
				svc, err := c.Service(cmd.Context(), ref, client.ReadOptions{})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ts, err := c.Tasks(cmd.Context(), client.TaskQuery{Service: svc.ID})
				if err != nil {
					return err
				}
				for _, t := range ts {
					if match(&t) {
						tasks = append(tasks, t)
					}
				}
			}
			if len(errs) > 0 {
				return errs.err()
			}
			format.SortTasks(tasks)
			if done, err := listed(s.out(), &out, tasks, quiet, func(t api.Task) string { return t.ID }); done {
				return err
			}
			return format.TaskTable(s.out(), tasks, hostnames(nodes), s.now(), noTrunc)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print task IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten IDs, images and errors")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: desired-state=running|shutdown|remove, node=HOSTNAME|ID, id=PREFIX, name=SERVICE.SLOT")
	cmd.RegisterFlagCompletionFunc("filter", cobra.FixedCompletions([]string{"desired-state=running", "desired-state=shutdown", "node=", "id=", "name="}, cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace))
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func hostnames(nodes []api.Node) map[string]string {
	m := make(map[string]string, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n.Description.Hostname
	}
	return m
}

func taskFilter(cmd *cobra.Command, filters []string, nodes []api.Node) (func(*api.Task) bool, error) {
	var tests []func(*api.Task) bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, usagef(cmd, "filter %q is not KEY=VALUE, e.g. -f desired-state=running", f)
		}
		switch k {
		case "desired-state":
			st := api.TaskState(v)
			if !st.Valid() {
				return nil, usagef(cmd, "filter %q: desired-state is running, shutdown or remove", f)
			}
			tests = append(tests, func(t *api.Task) bool { return t.DesiredState == st })
		case "node":
			ids := map[string]bool{}
			for _, n := range nodes {
				if n.Description.Hostname == v || strings.HasPrefix(n.ID, v) {
					ids[n.ID] = true
				}
			}
			tests = append(tests, func(t *api.Task) bool { return ids[t.NodeID] })
		case "id":
			tests = append(tests, func(t *api.Task) bool { return strings.HasPrefix(t.ID, v) })
		case "name":
			tests = append(tests, func(t *api.Task) bool { return t.Name() == v || t.ServiceName == v })
		default:
			return nil, usagef(cmd, "filter %q: the filters are desired-state, node, id and name", f)
		}
	}
	return func(t *api.Task) bool {
		for _, test := range tests {
			if !test(t) {
				return false
			}
		}
		return true
	}, nil
}

func (s *session) serviceInspectCmd() *cobra.Command {
	var out outputFlag
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect SERVICE [SERVICE...]",
		Short: "Show services in detail",
		Long: `Show services as the API stores them: a JSON array by default (as docker
inspect prints), YAML with -o yaml, or a readable summary with --pretty.
A service is named by its name, its ID or a unique ID prefix.`,
		Example: `  warrenctl service inspect web
  warrenctl service inspect --pretty web
  warrenctl service inspect -o yaml web api`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			if pretty && cmd.Flags().Changed("output") {
				return usagef(cmd, "--pretty and -o do not go together: choose one")
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			var services []*api.Service
			var errs multiError
			for _, ref := range args {
				svc, err := c.Service(cmd.Context(), ref, client.ReadOptions{})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				services = append(services, svc)
			}
			if pretty {
				for i, svc := range services {
					if i > 0 {
						fmt.Fprintln(s.out())
					}
					if err := format.PrettyService(s.out(), svc, s.now()); err != nil {
						return err
					}
				}
			} else if len(services) > 0 || len(errs) == 0 {
				if services == nil {
					services = []*api.Service{}
				}
				if _, err := out.encode(s.out(), services); err != nil {
					return err
				}
			}
			return errs.err()
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary")
	addOutputFlag(cmd, &out, format.JSON, format.JSON, format.YAML)
	return cmd
}

func (s *session) serviceRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE [SERVICE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more services",
		Long: `Remove services. Their tasks are stopped (each gets its stop grace
period) and removed; the command returns once the manager has
committed the removal. Each removed service is printed as named.`,
		Example:           `  warrenctl service rm web api`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var errs multiError
			for _, ref := range args {
				if err := c.RemoveService(cmd.Context(), ref, 0); err != nil {
					if !api.NotFound(err) && !api.IsCode(err, api.CodeAmbiguous) {
						return err
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(s.out(), ref)
			}
			return errs.err()
		},
	}
}

func (s *session) serviceScaleCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Set the replica count of one or more services",
		Long: `Set how many tasks replicated services run. Unless -d is given, wait
until that many run (or a task fails, or --timeout passes), printing
progress to stderr. Global services run one task per node and cannot
be scaled.`,
		Example: `  warrenctl service scale web=5
  warrenctl service scale -d web=0 api=2`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeScale,
		RunE: func(cmd *cobra.Command, args []string) error {
			type scale struct {
				ref string
				n   uint64
			}
			var todo []scale
			for _, a := range args {
				ref, n, err := opts.ParseScale(a)
				if err != nil {
					return usagef(cmd, "%v", err)
				}
				todo = append(todo, scale{ref, n})
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			var errs multiError
			var done []*api.Service
			for _, sc := range todo {
				svc, err := c.ScaleService(cmd.Context(), sc.ref, sc.n)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(s.out(), "%s scaled to %d\n", sc.ref, sc.n)
				done = append(done, svc)
			}
			for _, svc := range done {
				if err := s.converge(cmd.Context(), svc, w, scaled); err != nil {
					errs = append(errs, err)
				}
			}
			return errs.err()
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}
