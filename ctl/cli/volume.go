package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/ctl/opts"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) volumeCmd() *cobra.Command {
	cmd := groupCmd("volume", "Manage volumes",
		`A volume is a named directory of data that lives on one node and
outlives the tasks that mount it (--mount type=volume,src=NAME,dst=/data).
The tasks that mount a volume run only on its node: the one named with
--node at create, or else the node of the first task placed with it.
Removing a volume deletes its data on its node.`)
	cmd.AddCommand(s.volumeCreateCmd(), s.volumeLsCmd(), s.volumeInspectCmd(), s.volumeRmCmd())
	return cmd
}

func (s *session) volumeCreateCmd() *cobra.Command {
	var node string
	var labels []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a volume",
		Long: `Create a volume. With --node it lives on that node; without, on the
node of the first task placed that mounts it.`,
		Example: `  warrenctl volume create data --node pi-7
  warrenctl volume create cache --label team=web`,
		Args:              exactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := api.VolumeSpec{Name: args[0], Node: node}
			for _, l := range labels {
				k, v, err := opts.ParseLabel(l)
				if err != nil {
					return usagef(cmd, "--label: %v", err)
				}
				if spec.Labels == nil {
					spec.Labels = map[string]string{}
				}
				spec.Labels[k] = v
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			vol, err := c.CreateVolume(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out(), vol.Spec.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node the volume lives on (hostname or ID; default: the node of its first task)")
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "set a volume label: KEY=VALUE")
	cmd.RegisterFlagCompletionFunc("node", s.completeNodes)
	return cmd
}

func (s *session) volumeLsCmd() *cobra.Command {
	var out outputFlag
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the volumes",
		Long:    `List the volumes with the node each lives on ("-" until its first task is placed).`,
		Example: `  warrenctl volume ls
  warrenctl volume ls -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			vols, err := c.Volumes(cmd.Context(), client.ReadOptions{})
			if err != nil {
				return err
			}
			if done, err := listed(s.out(), &out, vols, quiet, func(v api.Volume) string { return v.Spec.Name }); done {
				return err
			}
			nodes, _ := c.Nodes(cmd.Context(), client.ReadOptions{}) // without them, short IDs
			return format.VolumeTable(s.out(), vols, hostnames(nodes))
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print volume names")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func (s *session) volumeInspectCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:               "inspect NAME [NAME...]",
		Short:             "Show volumes in detail",
		Long:              `Show volumes as the API stores them: a JSON array by default, YAML with -o yaml.`,
		Example:           `  warrenctl volume inspect data`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeVolumes,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			vols := []*api.Volume{}
			var errs multiError
			for _, name := range args {
				v, err := c.Volume(cmd.Context(), name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				vols = append(vols, v)
			}
			if len(vols) > 0 || len(errs) == 0 {
				if _, err := out.encode(s.out(), vols); err != nil {
					return err
				}
			}
			return errs.err()
		},
	}
	addOutputFlag(cmd, &out, format.JSON, format.JSON, format.YAML)
	return cmd
}

func (s *session) volumeRmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm NAME [NAME...]",
		Aliases: []string{"remove"},
		Short:   "Remove volumes and their data",
		Long: `Remove volumes. The agent of the volume's node deletes its data once
no container there uses it. A volume that a task uses is refused, naming
the services that use it: remove them, or their mount, first.`,
		Example:           `  warrenctl volume rm data`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeVolumes,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var errs multiError
			for _, name := range args {
				if err := c.RemoveVolume(cmd.Context(), name); err != nil {
					if _, ok := err.(*api.Error); !ok {
						return err
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(s.out(), name)
			}
			return errs.err()
		},
	}
	return cmd
}
