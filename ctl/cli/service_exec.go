package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// exitError ends warrenctl with code, saying msg first when there is one:
// exec passes the command's exit code on.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// Exit codes of exec when the command could not run, as a shell's.
const (
	ExitCannotRun = 126 // the command exists but could not be run
	ExitNotFound  = 127 // no such command in the container
)

func (s *session) serviceExecCmd() *cobra.Command {
	var interactive, tty bool
	cmd := &cobra.Command{
		Use:   "exec [-it] TASK -- CMD [ARG...]",
		Short: "Run a command in a task's container, on whichever node runs it",
		Long: `Run a command inside the running container of a task, on whichever node
runs it: the manager passes the session on to that node, whose agent
starts the process in the container (with its user, environment and
working directory). TASK is a task ID, an ID prefix, or SERVICE.SLOT (the
running task of that slot).

-i passes stdin to the command; -t gives it a terminal (stdin must be
one) that follows this terminal's size. Without -t, the command's stdout
and stderr stay apart. Its output is passed on as it is, control
characters included.

warrenctl exits with the command's exit code; 126 when the command could
not run, 127 when it does not exist in the container, 1 when the session
could not start or broke (the task does not run, its node cannot be
reached). Running a command needs the operator or admin role; every exec
is logged by the managers with who ran what.`,
		Example: `  warrenctl service exec web.1 -- cat /etc/hostname
  warrenctl service exec -it web.1 -- sh
  echo 'select 1;' | warrenctl service exec -i db.1 -- psql`,
		ValidArgsFunction: s.completeService,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef(cmd, "give the task and the command to run.\nUsage:  %s", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return usagef(cmd, "no command: say what to run after the task, e.g. warrenctl service exec %s -- sh", ref)
			}
			req := api.ExecRequest{Cmd: argv, TTY: tty, Stdin: interactive}
			streams := client.ExecStreams{Stdout: s.app.Stdout, Stderr: s.app.Stderr}
			if interactive {
				streams.Stdin = s.app.Stdin
			}
			var term *os.File
			if tty {
				f, ok := s.app.Stdin.(*os.File)
				if !ok || !s.app.IsTerminal(f) {
					return usagef(cmd, "-t gives the command a terminal, and stdin is not one: drop -t (with -i to pass input through a pipe)")
				}
				term = f
				if sz, err := termSize(f); err == nil {
					req.Width, req.Height = sz.Width, sz.Height
				}
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			t, err := s.resolveTask(ctx, c, ref)
			if err != nil {
				if api.IsCode(err, api.CodeNotFound) {
					return api.Errorf(api.CodeNotFound, "no task %q: give a task ID or SERVICE.SLOT (warrenctl service ps SERVICE lists them)", ref)
				}
				return err
			}
			if term != nil {
				restore, err := makeRaw(term)
				if err != nil {
					return fmt.Errorf("-t: put the terminal in raw mode: %w", err)
				}
				defer restore()
				streams.Resize = watchResize(ctx, term)
			}
			code, err := c.Exec(ctx, t.ID, req, streams)
			var xe *client.ExecError
			switch {
			case errors.As(err, &xe) && xe.NotFound:
				return &exitError{code: ExitNotFound, msg: fmt.Sprintf("task %s: %s", t.Name(), xe.Message)}
			case errors.As(err, &xe):
				return &exitError{code: ExitCannotRun, msg: fmt.Sprintf("task %s: %s", t.Name(), xe.Message)}
			case err != nil:
				return fmt.Errorf("exec in task %s: %w", t.Name(), err)
			case code != 0:
				return &exitError{code: min(max(code, 1), 255)}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after TASK are the command's
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "pass stdin to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal (stdin must be one)")
	return cmd
}
