package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) serviceLogsCmd() *cobra.Command {
	var follow, raw bool
	var tail, since string
	cmd := &cobra.Command{
		Use:   "logs SERVICE|TASK",
		Short: "Show the output of a service's tasks, on every node",
		Long: `Show what the service's tasks write to stdout and stderr, wherever they
run, each line prefixed with its task's name, as the manager serves it
from GET /v1/services/{ref}/logs: it reads each task's log on the node
that runs it. Give a task (its ID, an ID prefix, or SERVICE.SLOT) to see
that task's lines only. -f keeps printing new lines until interrupted.

--since shows the lines written at or after a time, to within a second:
containers' lines carry no time, and each node notes its log files'
lengths once a second. Give a duration ago (10m, 2h) or a time in RFC
3339 (2026-12-05T10:00:00Z); a duration is counted back from this
machine's clock, and every node cuts at that one instant. With --tail,
the last N of those lines.

A node that cannot be reached (down, cut off, its agent not answering)
is named in a warning on stderr, and so is a node whose stream breaks
while following; the other nodes' lines are still shown, and the command
exits 1 because some lines are missing.

What a container writes may hold terminal control sequences. When
stdout is a terminal, control characters other than tab and newline are
shown escaped (ESC as \u001b, CR as \r, invalid UTF-8 as \xff) unless
--raw is given; when stdout is a pipe or a file, the output is passed on
byte for byte.

A manager that does not serve logs answers 404: read them on the node
that runs the task instead, where the agent keeps them under its data
directory (logs/).`,
		Example: `  warrenctl service logs web
  warrenctl service logs -f --tail 100 web
  warrenctl service logs --since 10m web
  warrenctl service logs web.2`,
		Args:              exactArgs(1),
		ValidArgsFunction: s.completeService,
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.LogOptions{Follow: follow, Tail: -1}
			if tail != "all" {
				n, err := strconv.ParseUint(tail, 10, 32)
				if err != nil {
					return usagef(cmd, "--tail %q: give a number of lines or all", tail)
				}
				o.Tail = int(n)
			}
			if since != "" {
				t, err := api.ParseLogSince(since, time.Now())
				if err != nil {
					return usagef(cmd, "--%v", err)
				}
				o.Since = t
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Resolve the service (or the task) first, so that a 404 from
			// the logs endpoint means the endpoint, not the service, is
			// missing.
			name := args[0]
			svc, err := c.Service(ctx, args[0], client.ReadOptions{})
			if api.IsCode(err, api.CodeNotFound) {
				t, terr := s.resolveTask(ctx, c, args[0])
				if terr != nil {
					if api.IsCode(terr, api.CodeNotFound) {
						return api.Errorf(api.CodeNotFound, "no service or task %q: warrenctl service ls lists the services, warrenctl service ps SERVICE their tasks", args[0])
					}
					return terr
				}
				svc, err = c.Service(ctx, t.ServiceID, client.ReadOptions{})
				o.Task, name = t.ID, t.Name()
			}
			if err != nil {
				return err
			}
			body, err := c.ServiceLogs(ctx, svc.ID, o)
			if err != nil {
				var ae *api.Error
				if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
					return fmt.Errorf("the manager at %s does not serve service logs (GET /v1/services/{ref}/logs answered 404: %s): "+
						"it is older than this warrenctl, or logs are not implemented yet; read them on the node that runs the task, under the agent's data directory (logs/)",
						s.hostAddr(), ae.Message)
				}
				return err
			}
			defer body.Close()
			out := s.out() // sanitized
			if raw || !s.app.IsTerminal(s.app.Stdout) {
				out = s.app.Stdout
			}
			missing := 0
			err = client.CopyLogs(out, body, func(n api.LogNotice) {
				missing++
				fmt.Fprintf(s.stderr, "warrenctl: warning: %s\n", n)
			})
			var inc *client.IncompleteLogsError
			switch {
			case errors.As(err, &inc):
				return fmt.Errorf("%s %s: %w", kindOf(o.Task), name, err)
			case err != nil && ctx.Err() != nil:
				// Interrupted while following: that is how -f ends.
				if missing > 0 {
					return fmt.Errorf("%s %s: the logs are incomplete: some nodes' lines are missing (see the warnings above)", kindOf(o.Task), name)
				}
				return nil
			case err != nil:
				return fmt.Errorf("%s %s: reading logs: %w", kindOf(o.Task), name, err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "print only the last N lines of each task")
	cmd.Flags().StringVar(&since, "since", "", "print only the lines written since a time (2026-12-05T10:00:00Z) or for a duration (10m), to within a second")
	cmd.Flags().BoolVar(&raw, "raw", false, "pass control characters to the terminal as the containers wrote them")
	return cmd
}

func kindOf(task string) string {
	if task != "" {
		return "task"
	}
	return "service"
}

// resolveTask finds a task by ID or ID prefix, or by its name,
// SERVICE.SLOT (SERVICE.NODE for a global service's): of the tasks of
// that name, the one that runs, else the newest.
func (s *session) resolveTask(ctx context.Context, c *client.Client, ref string) (*api.Task, error) {
	t, err := c.Task(ctx, ref)
	if err == nil || !api.IsCode(err, api.CodeNotFound) {
		return t, err
	}
	i := strings.LastIndexByte(ref, '.')
	if i <= 0 {
		return nil, err
	}
	ts, lerr := c.Tasks(ctx, client.TaskQuery{Service: ref[:i]})
	if lerr != nil {
		return nil, err
	}
	var best *api.Task
	for k := range ts {
		tk := &ts[k]
		if tk.Name() != ref && !(tk.Slot == 0 && strings.HasPrefix(tk.NodeID, ref[i+1:])) {
			continue
		}
		switch {
		case best == nil,
			tk.Status.State == api.TaskRunning && best.Status.State != api.TaskRunning,
			(tk.Status.State == api.TaskRunning) == (best.Status.State == api.TaskRunning) && tk.CreatedAt.After(best.CreatedAt):
			best = tk
		}
	}
	if best == nil {
		return nil, err
	}
	return best, nil
}
