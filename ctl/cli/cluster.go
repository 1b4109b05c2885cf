package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) nodePromoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "promote NODE...",
		Short: "Make workers managers",
		Long: `Make worker nodes managers: each restarts its warren-manager as a Raft
member, catches up, then votes. Keep 1, 3 or 5 managers.`,
		Example:           `  warrenctl node promote pi-2 pi-3`,
		Args:              minArgs(1),
		ValidArgsFunction: s.completeNode,
		RunE:              s.changeRole((*client.Client).PromoteNode, "promoted to a manager"),
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
		RunE:              s.changeRole((*client.Client).DemoteNode, "demoted to a worker"),
	}
}

// changeRole runs change (promote or demote) on each node named, in
// order, and says what became of each.
func (s *session) changeRole(change func(*client.Client, context.Context, string) (*api.Node, error), became string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := s.client()
		if err != nil {
			return err
		}
		for _, ref := range args {
			n, err := change(c, cmd.Context(), ref)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out(), "node %s %s\n", n.Description.Hostname, became)
		}
		return nil
	}
}

func (s *session) caCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show the cluster's CA, or rotate it",
		Long: `Show the digest of the cluster's CA (join tokens pin it) and whether a
rotation is running.`,
		Example: `  warrenctl ca
  warrenctl ca rotate
  warrenctl ca rotate --finish`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			info, err := c.CA(cmd.Context())
			if err != nil {
				return err
			}
			printCA(s, info)
			return nil
		},
	}
	var finish bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Roll a new CA through the fleet, with no downtime",
		Long: `Start a CA rotation: a new CA, cross-signed by the current one, becomes
the one managers sign with; every node trusts both and renews its
certificate under the new one within about half a minute, while old and
new certificates keep talking. When every node shows ready again, end the
rotation with --finish: the old CA is dropped, join tokens are renewed
(print them with warrenctl join-token), and a node that never renewed must
join again.`,
		Example: `  warrenctl ca rotate
  warrenctl node ls            # every node ready?
  warrenctl ca rotate --finish`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			info, err := c.RotateCA(cmd.Context(), finish)
			if err != nil {
				return err
			}
			printCA(s, info)
			return nil
		},
	}
	rotate.Flags().BoolVar(&finish, "finish", false, "end the running rotation: drop the old CA")
	cmd.AddCommand(rotate)
	return cmd
}

func printCA(s *session, info *api.CAInfo) {
	fmt.Fprintf(s.out(), "CA digest:  %s\n", info.Digest)
	if info.Rotating {
		fmt.Fprintf(s.out(), "Rotating:   yes; also trusted: %d other CA(s). Finish with warrenctl ca rotate --finish once every node is ready.\n", len(info.Digests)-1)
	} else {
		fmt.Fprintf(s.out(), "Rotating:   no\n")
	}
}
