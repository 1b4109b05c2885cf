package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
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
