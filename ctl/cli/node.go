package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/ctl/opts"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) nodeCmd() *cobra.Command {
	cmd := groupCmd("node", "Manage the nodes of the fleet",
		`A node is one device of the fleet. Nodes join with a join token; these
commands list them, label them, drain them and remove them. They follow
"docker node". A node is named by its hostname, its ID or an ID prefix.`)
	cmd.AddCommand(s.nodeLsCmd(), s.nodeInspectCmd(), s.nodeUpdateCmd(), s.nodePromoteCmd(), s.nodeDemoteCmd(), s.nodeRmCmd(), s.nodeJournalCmd())
	return cmd
}

func (s *session) nodeLsCmd() *cobra.Command {
	var out outputFlag
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the nodes",
		Long: `List the nodes with their state and availability. The node whose
manager warrenctl talks to is marked with "*" after its ID. DISK FREE is
the space free on each node's Warren data partition, as its agent last
reported it; "low" marks a node that takes no new tasks until it has
256MiB or 5% of it free, whichever is more. A manager whose disk is full
says "disk full": it refuses writes until space is freed.`,
		Example: `  warrenctl node ls
  warrenctl node ls -q
  warrenctl node ls -o json`,
		Args: noArgs,
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
			slices.SortFunc(nodes, func(a, b api.Node) int { return strings.Compare(a.Description.Hostname, b.Description.Hostname) })
			if done, err := listed(s.out(), &out, nodes, quiet, func(n api.Node) string { return n.ID }); done {
				return err
			}
			info, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			if info.DiskFull != "" {
				fmt.Fprintf(s.stderr, "warrenctl: warning: this manager (node %s): %s; it resumes on its own\n", format.ShortID(info.NodeID), format.Sanitize(info.DiskFull, false))
			}
			return format.NodeTable(s.out(), nodes, info.NodeID, s.now(), certGrace(cmd.Context(), c, nodes, s.now()))
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print node IDs")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func (s *session) nodeInspectCmd() *cobra.Command {
	var out outputFlag
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect NODE [NODE...]",
		Short: "Show nodes in detail",
		Long: `Show nodes as the API stores them: a JSON array by default, YAML with
-o yaml, or a readable summary with --pretty. "self" names the node
whose manager warrenctl talks to.`,
		Example: `  warrenctl node inspect --pretty self
  warrenctl node inspect -o yaml pi-7`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeNodes,
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
			var nodes []*api.Node
			var errs multiError
			for _, ref := range args {
				if ref == "self" {
					info, err := c.Info(cmd.Context())
					if err != nil {
						return err
					}
					ref = info.NodeID
				}
				n, err := c.Node(cmd.Context(), ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				nodes = append(nodes, n)
			}
			if pretty {
				for i, n := range nodes {
					if i > 0 {
						fmt.Fprintln(s.out())
					}
					if err := format.PrettyNode(s.out(), n, s.now()); err != nil {
						return err
					}
				}
			} else if len(nodes) > 0 || len(errs) == 0 {
				if nodes == nil {
					nodes = []*api.Node{}
				}
				if _, err := out.encode(s.out(), nodes); err != nil {
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

func (s *session) nodeUpdateCmd() *cobra.Command {
	var labelAdd, labelRm []string
	var availability string
	cmd := &cobra.Command{
		Use:   "update NODE",
		Short: "Change a node's availability or labels",
		Long: `Change a node: its availability (active: takes tasks; pause: keeps its
tasks, takes no new ones; drain: its tasks move to other nodes) and its
labels, which placement constraints match (node.labels.KEY==VALUE).

warrenctl reads the node, changes it, and writes it back naming the
version it read; if the node changed in between, it retries.`,
		Example: `  warrenctl node update --availability drain pi-7
  warrenctl node update --label-add zone=east --label-add gpu pi-7
  warrenctl node update --label-rm zone pi-7`,
		Args:              exactArgs(1),
		ValidArgsFunction: s.completeNode,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			set := cmd.Flags().Changed
			if !set("availability") && len(labelAdd) == 0 && len(labelRm) == 0 {
				return usagef(cmd, "nothing to change: give --availability, --label-add or --label-rm")
			}
			if set("availability") {
				switch availability {
				case api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain:
				default:
					return usagef(cmd, "--availability %q: use active, pause or drain", availability)
				}
			}
			add := map[string]string{}
			for _, l := range labelAdd {
				k, v, err := opts.ParseLabel(l)
				if err != nil {
					return usagef(cmd, "--label-add: %v", err)
				}
				add[k] = v
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			for attempt := 1; ; attempt++ {
				n, err := c.Node(cmd.Context(), ref)
				if err != nil {
					return err
				}
				spec := n.Spec
				spec.Labels = maps.Clone(n.Spec.Labels)
				if spec.Labels == nil {
					spec.Labels = map[string]string{}
				}
				for _, k := range labelRm {
					k, _, _ = strings.Cut(k, "=")
					delete(spec.Labels, k)
				}
				maps.Copy(spec.Labels, add)
				if len(spec.Labels) == 0 {
					spec.Labels = nil
				}
				if set("availability") {
					spec.Availability = availability
				}
				if err := api.ValidateNodeSpec(&spec); err != nil {
					return err
				}
				_, err = c.UpdateNodeSpec(cmd.Context(), n.ID, spec, n.Version)
				if api.IsCode(err, api.CodeConflict) && attempt < conflictRetries {
					if again, e := c.Node(cmd.Context(), n.ID); e == nil && again.Version != n.Version {
						continue
					}
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(s.out(), ref)
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&availability, "availability", "", "active, pause or drain")
	cmd.Flags().StringArrayVar(&labelAdd, "label-add", nil, "add or change a node label: KEY=VALUE (KEY alone: an empty value)")
	cmd.Flags().StringArrayVar(&labelRm, "label-rm", nil, "remove a node label: KEY")
	cmd.RegisterFlagCompletionFunc("availability", cobra.FixedCompletions(
		[]string{api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (s *session) nodeRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NODE [NODE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more nodes from the fleet",
		Long: `Remove nodes from the cluster. A node that is ready is refused unless
--force is given; drain it first (node update --availability drain) so
its tasks move elsewhere. A manager cannot remove itself.`,
		Example: `  warrenctl node update --availability drain pi-7 && warrenctl node rm pi-7
  warrenctl node rm --force pi-9`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeNodes,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var errs multiError
			for _, ref := range args {
				if err := c.RemoveNode(cmd.Context(), ref, force); err != nil {
					if _, ok := err.(*api.Error); !ok {
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
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the node even if it is ready")
	return cmd
}

// certGrace is how long after a node's certificate expired the managers
// still renew it, asked only when a node's has expired; -1 when the
// manager did not say (node ls then gives the date alone).
func certGrace(ctx context.Context, c *client.Client, nodes []api.Node, now time.Time) time.Duration {
	if !slices.ContainsFunc(nodes, func(n api.Node) bool { return format.CertExpired(&n, now) }) {
		return -1
	}
	ca, err := c.CA(ctx)
	if err != nil {
		return -1
	}
	return ca.CertGrace.D()
}
