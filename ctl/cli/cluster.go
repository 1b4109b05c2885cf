package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
)

func (s *session) joinTokenCmd() *cobra.Command {
	var rotate, quiet bool
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "join-token worker|manager",
		Short: "Print (or rotate) the token that joins a device to the cluster",
		Long: `Print the current join token of a kind, and the command that joins a
device with it. A worker token makes the device a worker, a manager token a
manager. The token pins the cluster's CA: a device that joins with it
cannot be fooled into joining another cluster.

--rotate makes a new token and revokes the old one (devices that joined
stay joined); --ttl makes a new token that expires.`,
		Example: `  warrenctl join-token worker
  warrenctl join-token manager -q
  warrenctl join-token worker --rotate
  warrenctl join-token worker --ttl 24h`,
		Args:      exactArgs(1),
		ValidArgs: []string{api.RoleWorker, api.RoleManager},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			if kind != api.RoleWorker && kind != api.RoleManager {
				return usagef(cmd, "%q: ask for a worker or a manager token", kind)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			t, err := c.JoinToken(cmd.Context(), kind, rotate, ttl)
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(s.out(), t.Token)
				return nil
			}
			addr := "MANAGER:4242"
			if len(t.Managers) > 0 {
				addr = t.Managers[0]
			}
			fmt.Fprintf(s.out(), "To add a %s to this cluster, run on the device:\n\n    warren manager --join %s --token %s\n\n", kind, addr, t.Token)
			fmt.Fprintf(s.out(), "or write role, token and managers into /etc/warren/warren.conf before its first boot.\n")
			if !t.ExpiresAt.IsZero() {
				fmt.Fprintf(s.out(), "The token expires %s.\n", t.ExpiresAt.Local().Format(time.RFC1123))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "make a new token and revoke the current one")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "make a new token that expires after this long (e.g. 24h)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print the token")
	return cmd
}

func (s *session) nodePromoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "promote NODE...",
		Short: "Make workers managers",
		Long: `Make worker nodes managers: each restarts its warren-manager as a Raft
member, catches up, then votes. Keep 1, 3 or 5 managers.`,
		Example:           `  warrenctl node promote pi-2 pi-3`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeNode,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			for _, ref := range args {
				n, err := c.PromoteNode(cmd.Context(), ref)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out(), "node %s promoted to a manager\n", n.Description.Hostname)
			}
			return nil
		},
	}
}

func (s *session) nodeDemoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demote NODE...",
		Short: "Make managers workers",
		Long: `Make manager nodes workers: each leaves Raft, drops its copy of the
cluster's state and follows the managers as a worker. The last manager
cannot be demoted, nor the leader from its own socket.`,
		Example:           `  warrenctl node demote pi-3`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeNode,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			for _, ref := range args {
				n, err := c.DemoteNode(cmd.Context(), ref)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out(), "node %s demoted to a worker\n", n.Description.Hostname)
			}
			return nil
		},
	}
}
