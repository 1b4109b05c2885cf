// Package cli is warrenctl's command tree: service, node, apply,
// completion and version, built with cobra.
//
// It talks to a manager only through the typed API client
// (daemons/api/client) and knows the cluster only through the API types
// (daemons/api): never Raft, bbolt, containerd, the store or the manager;
// a test in ctl/warrenctl enforces this. Flag values are parsed by
// ctl/opts, apply's YAML files read by ctl/manifest, and everything shown
// is rendered by ctl/format.
//
// Run is the whole program as a function of its arguments, streams and
// environment, so that tests run commands in-process against an
// in-process cluster. Exit codes: 0 success, 1 failure, 2 usage error;
// service exec exits with its command's code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // the command line is wrong
)

// The environment variables warrenctl reads.
const (
	// EnvHost sets the manager's address (--host).
	EnvHost = "WARREN_HOST"
	// EnvTLSDir sets the directory of the operator credentials for a
	// node port (--tls-dir).
	EnvTLSDir = "WARREN_TLS_DIR"
)

// DefaultRetry is how long a call waits for a manager that is starting,
// or for the managers to elect a leader, before it fails.
const DefaultRetry = 15 * time.Second

// App is warrenctl's surroundings: its streams, its environment and its
// clock. The zero values of Now and PollEvery take real defaults.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Now is the clock for relative times (time.Now when nil).
	Now func() time.Time
	// PollEvery is how often a waiting command looks at the tasks
	// (default 200ms).
	PollEvery time.Duration
	// IsTerminal says whether w is a terminal (nil: a terminal device
	// behind an *os.File); service logs escapes control characters only
	// then.
	IsTerminal func(w io.Writer) bool
	// Retry is how long a call waits for a manager that is starting or
	// for an election to end (DefaultRetry when zero; negative: not at
	// all).
	Retry time.Duration
}

// Run runs warrenctl with args (without the program name) and returns its
// exit code. Standard input is os.Stdin; use App.Run to choose it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	a := &App{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: env}
	return a.Run(ctx, args)
}

// Run runs warrenctl with args and returns its exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	if a.Getenv == nil {
		a.Getenv = func(string) string { return "" }
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.PollEvery == 0 {
		a.PollEvery = 200 * time.Millisecond
	}
	if a.Retry == 0 {
		a.Retry = DefaultRetry
	}
	if a.Stdin == nil {
		a.Stdin = strings.NewReader("")
	}
	if a.IsTerminal == nil {
		a.IsTerminal = isTerminal
	}
	// Everything warrenctl prints goes through format.Sanitize: names,
	// errors and messages from nodes and containers cannot steer the
	// terminal. (JSON stays JSON: the escapes are JSON's.)
	stdout, stderr := format.NewWriter(a.Stdout), format.NewWriter(a.Stderr)
	defer stdout.Flush()
	defer stderr.Flush()
	s := &session{app: a, stdout: stdout, stderr: stderr}
	defer s.close()
	root := s.rootCmd()
	root.SetArgs(localArgs(args))
	root.SetIn(a.Stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var xe *exitError
	if errors.As(err, &xe) {
		// A command's own exit code (exec): said already, or not at all.
		if xe.msg != "" {
			fmt.Fprintf(stderr, "warrenctl: %s\n", xe.msg)
		}
		return xe.code
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		fmt.Fprintln(stderr, "warrenctl: interrupted")
		return ExitError
	}
	fmt.Fprintf(stderr, "warrenctl: %s\n", errorText(err))
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		if ue != nil && ue.cmd != nil {
			cmd = ue.cmd
		}
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "See '%s --help'.\n", cmd.CommandPath())
		return ExitUsage
	}
	return ExitError
}

// session is the state of one run: the flags every command shares and the
// client, made on first use.
type session struct {
	app            *App
	stdout, stderr io.Writer // App's, sanitized
	host           string    // --host
	tlsDir         string    // --tls-dir
	c              *client.Client
	waited         bool // said that a call waits for a manager
}

func (s *session) close() {
	if s.c != nil {
		s.c.Close()
	}
}

// hostAddr is the manager to talk to: --host, then $WARREN_HOST, then the
// local socket.
func (s *session) hostAddr() string {
	if s.host != "" {
		return s.host
	}
	if h := s.app.Getenv(EnvHost); h != "" {
		return h
	}
	return client.DefaultHost
}

// tlsDirPath is where the operator credentials for a node port are:
// --tls-dir, then $WARREN_TLS_DIR; "" when neither is set.
func (s *session) tlsDirPath() string {
	d := s.tlsDir
	if d == "" {
		d = s.app.Getenv(EnvTLSDir)
	}
	return expandHome(d, s.app.Getenv("HOME"))
}

// expandHome replaces a leading "~" by home, for a path given as
// --tls-dir=~/x, which the shell leaves alone.
func expandHome(path, home string) string {
	if home == "" || (path != "~" && !strings.HasPrefix(path, "~/")) {
		return path
	}
	return home + path[1:]
}

// isNodePort says whether host is a manager's node port (mutual TLS).
func isNodePort(host string) bool { return strings.HasPrefix(host, "https://") }

func (s *session) client() (*client.Client, error) {
	if s.c != nil {
		return s.c, nil
	}
	host := s.hostAddr()
	var c *client.Client
	if isNodePort(host) {
		dir := s.tlsDirPath()
		if dir == "" {
			return nil, &usageError{msg: fmt.Sprintf("%s is a manager's node port: it speaks mutual TLS only and needs an operator certificate: "+
				"make one on a manager (warrenctl operator add NAME --role viewer|operator|admin --out DIR), copy DIR here, and give --tls-dir DIR (or $%s)", host, EnvTLSDir)}
		}
		var err error
		if c, err = client.NewTLS(host, dir); err != nil {
			return nil, err
		}
	} else {
		if s.tlsDir != "" {
			return nil, &usageError{msg: fmt.Sprintf("--tls-dir goes with a manager's node port (--host https://HOST:4242); %s is not one", host)}
		}
		var err error
		if c, err = client.New(host); err != nil {
			return nil, &usageError{msg: fmt.Sprintf("--host %q: use unix:///path/to/api.sock, a socket path, or https://HOST:4242 (a manager's node port) with --tls-dir", host)}
		}
	}
	if s.app.Retry > 0 {
		c.Retry = s.app.Retry
		c.Retrying = s.sayWaiting
	}
	s.c = c
	return c, nil
}

// sayWaiting tells, once, that a call waits for a manager to start or for
// the managers to elect a leader.
func (s *session) sayWaiting(err error, _ time.Duration) {
	if s.waited {
		return
	}
	s.waited = true
	if api.IsCode(err, api.CodeNotLeader) {
		s.progressf("warrenctl: the managers have no leader (an election?): waiting up to %s for one", s.app.Retry)
		return
	}
	s.progressf("warrenctl: no manager answers at %s yet: waiting up to %s for one to start", s.hostAddr(), s.app.Retry)
}

func (s *session) now() time.Time { return s.app.Now() }

func (s *session) out() io.Writer { return s.stdout }

// progressf writes a progress or advice line to stderr, leaving stdout to
// what scripts read.
func (s *session) progressf(format string, args ...any) {
	fmt.Fprintf(s.stderr, format+"\n", args...)
}

// usageError is a wrong command line: exit code 2 and a pointer to --help.
type usageError struct {
	cmd *cobra.Command
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// isCobraUsage recognizes the usage errors cobra makes itself.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag",
		"if any flags in the group", "flag needs an argument", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// errorText is the message printed after "warrenctl: ".
func errorText(err error) string {
	msg := err.Error()
	if errors.Is(err, client.ErrUnreachable) {
		// The client says "client: cannot reach the warren manager at HOST
		// (connect: connection refused): ..."; keep the part a person needs.
		if i := strings.Index(msg, "cannot reach the warren manager"); i >= 0 {
			msg = msg[i:]
		}
		msg = strings.Replace(msg, "(connect: ", "(", 1)
	}
	return strings.TrimRight(strings.TrimPrefix(msg, "client: "), "\n")
}

// Positional argument rules that fail with a usage error.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "%q accepts no arguments, got %q.\nUsage:  %s", cmd.CommandPath(), args, cmd.UseLine())
	}
	return nil
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef(cmd, "%q requires at least %d argument%s.\nUsage:  %s", cmd.CommandPath(), n, plural(n), cmd.UseLine())
		}
		return nil
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef(cmd, "%q requires exactly %d argument%s.\nUsage:  %s", cmd.CommandPath(), n, plural(n), cmd.UseLine())
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// groupCmd makes a command that only holds subcommands: alone it shows
// its help, with an unknown subcommand it is a usage error.
func groupCmd(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef(cmd, "unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
}

func (s *session) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "warrenctl",
		Short: "Run containers on a Warren fleet",
		Long: `warrenctl deploys and inspects services on a Warren cluster of edge devices.

It talks to a warren-manager over its API: by default the local socket
unix:///run/warren/api.sock (root or members of group warren may use it),
or the address in --host or $WARREN_HOST. From another machine, give a
manager's node port, https://HOST:4242, and an operator certificate with
--tls-dir or $WARREN_TLS_DIR (an admin makes one on a manager with
warrenctl operator add). The commands follow "docker service" and
"docker node"; apply follows kubectl.`,
		Example: `  warrenctl service create --name web --replicas 3 -p 8080:80 nginx:alpine
  warrenctl service ls
  warrenctl apply -f stack.yaml
  WARREN_HOST=https://10.0.0.1:4242 WARREN_TLS_DIR=~/.warren/edge warrenctl node ls`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.PersistentFlags().StringVarP(&s.host, "host", "H", "",
		"the manager's API: unix:///PATH, a socket path, or a manager's node port https://HOST:4242 with --tls-dir (default $"+EnvHost+", else "+client.DefaultHost+")")
	root.PersistentFlags().StringVar(&s.tlsDir, "tls-dir", "",
		"the directory of an operator certificate (operator.key, operator.crt, ca.crt: warrenctl operator add --out DIR) for an https:// host (default $"+EnvTLSDir+")")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{cmd: c, msg: err.Error()} })
	root.AddCommand(s.serviceCmd(), s.secretCmd(), s.configCmd(), s.nodeCmd(), s.volumeCmd(), s.ingressCmd(), s.imageCmd(), s.joinTokenCmd(), s.operatorCmd(), s.caCmd(), s.clusterCmd(), s.unlockCmd(), s.unlockKeyCmd(), s.applyCmd(), s.eventsCmd(), s.stackCmd(), s.localCmd(), s.completionCmd(), s.versionCmd())
	return root
}
