package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
)

func (s *session) joinTokenCmd() *cobra.Command {
	var rotate, quiet bool
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "join-token worker|manager",
		Short: "Make a token that joins a device to the cluster; list and revoke tokens",
		Long: `Make a new join token of a kind and print it, with how to join a device
with it. A worker token makes the device a worker, a manager token a
manager. The token pins the cluster's CA: a device that joins with it
cannot be fooled into joining another cluster.

The token is shown only now: the cluster keeps a hash of it. It never goes
on a command line (ps shows command lines to every user): the device reads
it from a file (warren manager --token-file) or from /etc/warren/warren.conf.

Manager tokens expire after 24 hours unless --ttl says otherwise; worker
tokens last until revoked, unless given a --ttl. --rotate revokes the
kind's other tokens (devices that joined stay joined).`,
		Example: `  warrenctl join-token worker
  (umask 077; warrenctl join-token manager -q > token)
  warrenctl join-token worker --rotate
  warrenctl join-token worker --ttl 168h
  warrenctl join-token ls
  warrenctl join-token rm 4f3kq2za`,
		Args:      exactArgs(1),
		ValidArgs: []string{api.RoleWorker, api.RoleManager},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			if kind != api.RoleWorker && kind != api.RoleManager {
				return usagef(cmd, "%q: ask for a worker or a manager token (or: join-token ls, join-token rm ID)", kind)
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
			printJoinToken(s.out(), t, rotate, s.now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "revoke the kind's other tokens")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "make the token expire after this long (e.g. 168h; manager tokens: 24h unless given)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print the token")
	cmd.AddCommand(s.joinTokenLsCmd(), s.joinTokenRmCmd())
	return cmd
}

// printJoinToken prints a new token and how a device joins with it,
// without ever putting the token on a command line.
func printJoinToken(w io.Writer, t *api.JoinTokenInfo, rotated bool, now time.Time) {
	managers := t.Managers
	if len(managers) == 0 {
		managers = []string{"MANAGER:4242"}
	}
	fmt.Fprintf(w, "A new %s join token (ID %s), shown only now: the cluster keeps just a hash of it.\n\n    %s\n\n", t.Kind, t.ID, t.Token)
	fmt.Fprintf(w, "To add a %s: on the device, save the token in a file only root can read,\n\n", t.Kind)
	fmt.Fprintf(w, "    (umask 077; cat > /root/join-token)    # paste the token, then Ctrl-D\n\n")
	fmt.Fprintf(w, "and run\n\n    warren manager --listen-addr 0.0.0.0:4242 --join %s --token-file /root/join-token\n\n", managers[0])
	fmt.Fprintf(w, "or, before the device's first boot, write /etc/warren/warren.conf (mode 0600):\n\n")
	fmt.Fprintf(w, "    role = %s\n", t.Kind)
	if t.Kind == api.RoleManager {
		fmt.Fprintf(w, "    cluster = join\n")
	}
	fmt.Fprintf(w, "    join_token = %s\n    managers = %s\n\n", t.Token, strings.Join(managers, ","))
	fmt.Fprintf(w, "Never put the token on a command line: ps shows command lines to every user.\n")
	if rotated {
		fmt.Fprintf(w, "The other %s tokens are revoked; devices that joined with them stay joined.\n", t.Kind)
	}
	if t.ExpiresAt.IsZero() {
		fmt.Fprintf(w, "The token does not expire: revoke it when the devices have joined (warrenctl join-token rm %s).\n", t.ID)
	} else {
		fmt.Fprintf(w, "The token expires %s (%s); revoke it sooner with warrenctl join-token rm %s.\n",
			format.Time(t.ExpiresAt), format.Until(now, t.ExpiresAt), t.ID)
	}
}

func (s *session) joinTokenLsCmd() *cobra.Command {
	var out outputFlag
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the join tokens that can still join a device",
		Long: `List the live join tokens: their IDs, kinds, and when they were made and
expire. Their secrets are not shown: the cluster does not have them.`,
		Example: `  warrenctl join-token ls
  warrenctl join-token ls -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			tokens, err := c.JoinTokens(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(s.out(), &out, tokens, quiet, func(t api.JoinTokenInfo) string { return t.ID }); done {
				return err
			}
			return format.JoinTokenTable(s.out(), tokens, s.now())
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print token IDs")
	// No yaml: api.JoinTokenInfo has no YAML field names.
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON)
	return cmd
}

func (s *session) joinTokenRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID [ID...]",
		Aliases: []string{"remove", "revoke"},
		Short:   "Revoke join tokens",
		Long: `Revoke join tokens by ID (warrenctl join-token ls lists them): from now
on a device cannot join with them. Devices that joined with them stay
joined. Each revoked token's ID is printed.`,
		Example: `  warrenctl join-token rm 4f3kq2za`,
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var errs multiError
			for _, id := range args {
				if _, err := c.RevokeJoinToken(cmd.Context(), id); err != nil {
					if !api.NotFound(err) {
						return err
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(s.out(), id)
			}
			return errs.err()
		},
	}
}
