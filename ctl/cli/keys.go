package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
)

// Encryption at rest: autolock, the unlock key, the data keys.

func (s *session) unlockCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unlock",
		Short: "Unlock an autolocked manager with the unlock key",
		Long: `With autolock on, a manager that restarts is locked: it keeps its Raft seat
but opens no sealed value and takes no change. Give it the unlock key
(warrenctl unlock-key on an unlocked manager shows it): typed at the prompt,
or on standard input. Run it on the locked manager's node (or with --host
naming it).`,
		Example: `  warrenctl unlock
  warrenctl unlock < /media/usb/unlock-key`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := s.readSecretLine("Unlock key: ")
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			if err := c.Unlock(cmd.Context(), key); err != nil {
				return err
			}
			fmt.Fprintln(s.out(), "unlocked")
			return nil
		},
	}
}

// readSecretLine reads one line from standard input, with no echo when
// it is a terminal.
func (s *session) readSecretLine(prompt string) (string, error) {
	if f, ok := s.app.Stdin.(*os.File); ok {
		if restore, err := noEcho(f); err == nil {
			defer restore()
			fmt.Fprint(s.stderr, prompt)
			defer fmt.Fprintln(s.stderr)
		}
	}
	line, err := bufio.NewReader(s.app.Stdin).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil {
			return "", fmt.Errorf("no unlock key on standard input: type it, or pipe it in (warrenctl unlock-key on an unlocked manager shows it)")
		}
		return "", fmt.Errorf("the unlock key is empty: it starts with WRN-UNLOCK-")
	}
	return line, nil
}

func (s *session) unlockKeyCmd() *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "unlock-key",
		Short: "Show or rotate the unlock key of an autolocked cluster",
		Long: `Show the unlock key that opens a restarted manager when autolock is on
(warrenctl cluster update --autolock). Keep it off the devices. --rotate
makes a new one: every manager's key file is sealed under it within a
second; a manager that was down meanwhile still opens with the previous
key once, then follows the new one.`,
		Example: `  warrenctl unlock-key
  warrenctl unlock-key --rotate -q > unlock-key`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var info *api.UnlockKeyInfo
			if rotate {
				info, err = c.RotateUnlockKey(cmd.Context())
			} else {
				info, err = c.UnlockKey(cmd.Context())
			}
			if err != nil {
				return err
			}
			if !info.Autolock {
				return fmt.Errorf("autolock is off, so there is no unlock key: turn it on with warrenctl cluster update --autolock")
			}
			printUnlockKey(s, info, quiet)
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "make a new unlock key")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print the key")
	return cmd
}

func printUnlockKey(s *session, info *api.UnlockKeyInfo, quiet bool) {
	if quiet {
		fmt.Fprintln(s.out(), info.Key)
		return
	}
	fmt.Fprintf(s.out(), "Autolock is on. A restarted manager stays locked until given this key\n(warrenctl unlock); keep it safe, and off the devices:\n\n    %s\n", info.Key)
}

func (s *session) clusterCmd() *cobra.Command {
	cmd := groupCmd("cluster", "Cluster-wide settings: autolock and the data keys", `Settings of the whole cluster. Values Warren must keep secret (the CA's
key, the unlock key, secrets) are sealed with AES-256-GCM under a data key
kept in Raft, wrapped by a key-encryption key each manager keeps in
/var/lib/warren/manager/keys/kek.json: in the clear, or sealed under the
unlock key with autolock.`)
	cmd.AddCommand(s.clusterUpdateCmd(), s.clusterKeysCmd(), s.clusterRotateKeyCmd())
	return cmd
}

func (s *session) clusterUpdateCmd() *cobra.Command {
	var autolock bool
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Change cluster-wide settings",
		Long: `--autolock turns autolock on: each manager seals its key file under an
unlock key, printed once here (warrenctl unlock-key shows it again), and a
manager that restarts waits for warrenctl unlock. Off by default: an
unattended device must come back on its own after a power cut.
--autolock=false turns it off.`,
		Example: `  warrenctl cluster update --autolock
  warrenctl cluster update --autolock=false`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("autolock") {
				return usagef(cmd, "nothing to change: give --autolock or --autolock=false")
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			info, err := c.SetAutolock(cmd.Context(), autolock)
			if err != nil {
				return err
			}
			if !info.Autolock {
				fmt.Fprintln(s.out(), "Autolock is off: managers keep their key file in the clear and restart on their own.")
				return nil
			}
			printUnlockKey(s, info, false)
			return nil
		},
	}
	cmd.Flags().BoolVar(&autolock, "autolock", false, "lock a restarted manager until warrenctl unlock")
	return cmd
}

func (s *session) clusterKeysCmd() *cobra.Command {
	var check bool
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Show the data keys, or check that every sealed value opens",
		Long: `List the data keys with how many values are sealed under each, and whether
a rotation is under way. --check opens every sealed value on the manager
asked and reports any that does not open; it exits 1 if one does not.`,
		Example: `  warrenctl cluster keys
  warrenctl cluster keys --check`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			if check {
				return s.checkKeys(cmd, &out)
			}
			info, err := c.Keys(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := out.encode(s.out(), info); ok {
				return err
			}
			return format.KeysTable(s.out(), info)
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "open every sealed value and report those that do not open")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

// checkKeys runs GET /v1/keys/check and prints it; an unreadable value
// is an error.
func (s *session) checkKeys(cmd *cobra.Command, out *outputFlag) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	chk, err := c.CheckKeys(cmd.Context())
	if err != nil {
		return err
	}
	if ok, err := out.encode(s.out(), chk); ok || err != nil {
		if err == nil && len(chk.Unreadable) > 0 {
			err = fmt.Errorf("%d of %d sealed values do not open", len(chk.Unreadable), chk.Checked)
		}
		return err
	}
	fmt.Fprintf(s.out(), "%d of %d sealed values open; %d under the active data key %s.\n", chk.Readable, chk.Checked, chk.Readable-chk.NotActive, chk.Active)
	for _, u := range chk.Unreadable {
		fmt.Fprintf(s.out(), "  %s (%s): %s\n", u.Place, u.Key, u.Error)
	}
	if len(chk.Unreadable) > 0 {
		return fmt.Errorf("%d of %d sealed values do not open", len(chk.Unreadable), chk.Checked)
	}
	return nil
}

func (s *session) clusterRotateKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Start a data key rotation",
		Long: `Make a new data key; the leader seals every value again under it in the
background, a batch per Raft entry, and drops the old key once nothing is
sealed under it. A rotation survives a leader change or a restart: the next
leader goes on from where it stands. warrenctl cluster keys shows how far
it is; warrenctl cluster keys --check opens every value.`,
		Example: `  warrenctl cluster rotate-key
  warrenctl cluster keys`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			info, err := c.RotateDataKey(cmd.Context())
			if err != nil {
				return err
			}
			return format.KeysTable(s.out(), info)
		},
	}
}
