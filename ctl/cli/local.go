package cli

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// EnvAgent overrides client.DefaultAgentHost, the agent socket warrenctl
// --local talks to.
const EnvAgent = "WARREN_AGENT"

// localArgs turns `warrenctl --local CMD ...` into `warrenctl local CMD ...`.
func localArgs(args []string) []string {
	for i, a := range args {
		if a == "--local" {
			return append(append([]string{"local"}, args[:i]...), args[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
	}
	return args
}

// agentClient is a client of this node's agent socket, saying which user
// the operator is (SUDO_USER under sudo, else USER).
func (s *session) agentClient() (*client.Client, error) {
	host := s.app.Getenv(EnvAgent)
	if host == "" {
		host = client.DefaultAgentHost
	}
	c, err := client.New(host)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("$%s %q: use unix:///path/to/agent.sock", EnvAgent, host)}
	}
	user := s.app.Getenv("SUDO_USER")
	if user == "" {
		user = s.app.Getenv("USER")
	}
	if user != "" {
		c.Header = http.Header{api.LocalUserHeader: {user}}
	}
	return c, nil
}

func (s *session) localCmd() *cobra.Command {
	cmd := groupCmd("local", "Break-glass on this node, when it is cut off from the managers (also: warrenctl --local ...)",
		`On a node cut off from every manager, an operator on site (over SSH, as
root or in group warren) acts on the node's own tasks through its agent's
socket (`+client.DefaultAgentHost+`, or $`+EnvAgent+`): list them, read a
task's logs, stop, start or restart one, or pin an override (an
environment change, or an image loaded on the node).

Every action is written to the node's journal, append-only and chained by
hash, with the local user who made it; the journal reaches the managers on
reconnect (warrenctl node journal NODE). On reconnect an override is
undone (the managers' desired state comes back) unless it was --sticky:
then the managers record it with the task and service ps shows it. A
sticky stop ends the task, and the managers replace it.

While the node is connected the managers own its tasks, and these commands
refuse to change them: use warrenctl service ... instead.`)
	cmd.AddCommand(s.localPsCmd(), s.localActionCmd(api.LocalStop), s.localActionCmd(api.LocalStart), s.localActionCmd(api.LocalRestart),
		s.localOverrideCmd(), s.localLogsCmd(), s.localJournalCmd())
	return cmd
}

func (s *session) localPsCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:     "ps",
		Short:   "List this node's tasks as its agent sees them",
		Example: `  warrenctl --local ps`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.agentClient()
			if err != nil {
				return err
			}
			st, err := c.LocalStatus(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := out.encode(s.out(), st); ok {
				return err
			}
			if st.CutOff {
				fmt.Fprintf(s.out(), "node %s: cut off from the managers since %s\n", format.ShortID(st.NodeID), format.Ago(s.now(), st.LastContact))
			} else {
				fmt.Fprintf(s.out(), "node %s: connected to the managers (they own its tasks: warrenctl service ...)\n", format.ShortID(st.NodeID))
			}
			rows := make([][]string, 0, len(st.Tasks))
			for _, t := range st.Tasks {
				restarts := ""
				if t.Restarts > 0 {
					restarts = strconv.FormatUint(t.Restarts, 10)
				}
				rows = append(rows, []string{t.ID, t.Name, t.Image, string(t.Desired), string(t.State), t.Container, restarts, t.Override.String()})
			}
			return format.WriteTable(s.out(), []string{"ID", "NAME", "IMAGE", "DESIRED", "STATE (MANAGERS)", "CONTAINER", "LOCAL RESTARTS", "OVERRIDE"}, rows)
		},
	}
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func (s *session) localActionCmd(action string) *cobra.Command {
	var sticky bool
	short := map[string]string{
		api.LocalStop:    "Stop a task and hold it stopped while the node is cut off",
		api.LocalStart:   "Start a task held stopped (or whose container is not running)",
		api.LocalRestart: "Restart a task in place",
	}[action]
	cmd := &cobra.Command{
		Use:     action + " TASK",
		Short:   short,
		Example: fmt.Sprintf("  warrenctl --local %s 3k9x1q2w8e7r6t5y4u3i2o1p0", action),
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.agentClient()
			if err != nil {
				return err
			}
			id, err := s.localTaskID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if err := c.LocalAction(cmd.Context(), id, action, sticky); err != nil {
				return err
			}
			fmt.Fprintf(s.out(), "%s: %s (journaled)\n", id, action)
			return nil
		},
	}
	if action == api.LocalStop {
		cmd.Flags().BoolVar(&sticky, "sticky", false, "keep it stopped after reconnect: the managers then replace the task")
	}
	return cmd
}

// localTaskID resolves a task of this node by ID, ID prefix or name.
func (s *session) localTaskID(ctx context.Context, c *client.Client, ref string) (string, error) {
	st, err := c.LocalStatus(ctx)
	if err != nil {
		return "", err
	}
	var hits []string
	for _, t := range st.Tasks {
		if t.ID == ref || t.Name == ref {
			return t.ID, nil
		}
		if strings.HasPrefix(t.ID, ref) {
			hits = append(hits, t.ID)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return "", api.Errorf(api.CodeNotFound, "no task %q on this node: warrenctl --local ps lists them", ref)
	}
	return "", api.Errorf(api.CodeInvalid, "%q is the prefix of %d tasks here (%s): give more of the ID", ref, len(hits), strings.Join(hits, ", "))
}

func (s *session) localOverrideCmd() *cobra.Command {
	var env []string
	var image string
	var sticky, clear bool
	cmd := &cobra.Command{
		Use:   "override TASK",
		Short: "Pin an override on a task: an environment change, or a local image",
		Long: `Restart a task with an override: --env KEY=VALUE (repeatable) sets or
replaces variables, --image runs an image already loaded on this node. The
override lasts while the node is cut off, across reboots; on reconnect it
is undone, unless --sticky. --clear drops it.`,
		Example: `  warrenctl --local override web.1 --env MODE=degraded
  warrenctl --local override web.1 --image localhost/web:1.1 --sticky
  warrenctl --local override web.1 --clear`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if clear && (len(env) > 0 || image != "" || sticky) {
				return usagef(cmd, "--clear goes alone")
			}
			c, err := s.agentClient()
			if err != nil {
				return err
			}
			id, err := s.localTaskID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if clear {
				err = c.LocalClearOverride(cmd.Context(), id)
			} else {
				err = c.LocalOverride(cmd.Context(), id, api.TaskOverride{Env: env, Image: image, Sticky: sticky})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out(), "%s: restarted with the override %s (journaled)\n", id, map[bool]string{true: "dropped", false: "pinned"}[clear])
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "set an environment variable, KEY=VALUE")
	cmd.Flags().StringVar(&image, "image", "", "run this image (loaded on this node) instead")
	cmd.Flags().BoolVar(&sticky, "sticky", false, "keep the override after reconnect; the managers record it")
	cmd.Flags().BoolVar(&clear, "clear", false, "drop the task's override")
	return cmd
}

func (s *session) localLogsCmd() *cobra.Command {
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:     "logs TASK",
		Short:   "Print a task's logs from this node",
		Example: `  warrenctl --local logs web.1 --tail 50 -f`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.agentClient()
			if err != nil {
				return err
			}
			id, err := s.localTaskID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			body, err := c.TaskLogs(cmd.Context(), id, client.LogOptions{Follow: follow, Tail: tail})
			if err != nil {
				return err
			}
			defer body.Close()
			err = client.CopyLogs(s.out(), body, func(n api.LogNotice) { fmt.Fprintf(s.stderr, "warrenctl: warning: %s\n", n) })
			if err != nil && cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&tail, "tail", "n", -1, "print the last N lines (default all)")
	return cmd
}

func (s *session) localJournalCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:     "journal",
		Short:   "Print this node's break-glass journal, and whether its chain holds",
		Example: `  warrenctl --local journal`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.agentClient()
			if err != nil {
				return err
			}
			entries, broken, err := c.LocalJournal(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := out.encode(s.out(), entries); ok {
				return err
			}
			if err := journalTable(s, entries); err != nil {
				return err
			}
			if broken != "" {
				return fmt.Errorf("the journal does not verify: %s", broken)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

// journalTable prints journal entries.
func journalTable(s *session, entries []api.JournalEntry) error {
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, []string{strconv.FormatUint(e.Seq, 10), e.At.UTC().Format("2006-01-02T15:04:05Z"), e.User, e.Action,
			format.ShortID(e.Task), e.Detail, e.Result})
	}
	return format.WriteTable(s.out(), []string{"SEQ", "AT", "USER", "ACTION", "TASK", "DETAIL", "RESULT"}, rows)
}

func (s *session) nodeJournalCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "journal NODE",
		Short: "Print the break-glass journal a node sent the managers",
		Long: `Print the actions operators took on a node while it was cut off from the
managers (warrenctl --local), as the node sent them on reconnect. The
managers take each entry only where it follows on, by hash, from the one
before: a journal altered on the node is refused, not taken in part.`,
		Example: `  warrenctl node journal pi-7`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			entries, err := c.NodeJournal(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if ok, err := out.encode(s.out(), entries); ok {
				return err
			}
			return journalTable(s, entries)
		},
	}
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}
