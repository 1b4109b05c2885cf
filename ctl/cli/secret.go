package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/ctl/opts"
	"github.com/warren-edge/warren/daemons/api"
)

// secret and config: the same commands for both kinds (docker secret and
// docker config habits). A secret's value never comes back out of the
// API; a config's data does, with inspect --pretty.

func (s *session) secretCmd() *cobra.Command {
	return s.fileCmd(api.KindSecret, "Manage secrets: values mounted into tasks on tmpfs, sealed in the cluster",
		`A secret is a named, versioned value (a password, a key, a certificate)
that services mount as a read-only file in their tasks, at /run/secrets/NAME
by default. The managers keep it sealed (AES-256-GCM); it goes only to the
nodes that run a task using it, onto a tmpfs, never onto their disks in the
clear. No command shows a secret's value.

secret update gives a secret a new version in place: the services that use
it roll to it under their update config, and the old version is dropped once
no task holds it.`)
}

func (s *session) configCmd() *cobra.Command {
	return s.fileCmd(api.KindConfig, "Manage configs: files mounted into tasks",
		`A config is a named, versioned file that services mount read-only in
their tasks, at /NAME by default or at any absolute path. Unlike a secret it
is not secret: the managers keep it in the clear, and config inspect
--pretty shows it.

config update gives a config a new version in place: the services that use
it roll to it under their update config.`)
}

func (s *session) fileCmd(kind, short, long string) *cobra.Command {
	cmd := groupCmd(kind, short, long)
	cmd.AddCommand(s.fileCreateCmd(kind), s.fileLsCmd(kind), s.fileInspectCmd(kind), s.fileRmCmd(kind), s.fileUpdateCmd(kind))
	return cmd
}

// readValue reads a secret's or config's value from a file, or from
// standard input for "-", refusing what is too big before sending it.
func (s *session) readValue(kind, from string) ([]byte, error) {
	var r io.Reader
	if from == "-" {
		r = s.app.Stdin
	} else {
		f, err := os.Open(from)
		if err != nil {
			return nil, fmt.Errorf("read the %s's value: %w", kind, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, api.MaxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the %s's value: %w", kind, err)
	}
	if err := api.ValidateSecretData(kind, len(b)); err != nil {
		if len(b) > api.MaxSecretSize {
			return nil, fmt.Errorf("the %s's data is more than %d bytes (500 KiB), the limit: give a smaller file", kind, api.MaxSecretSize)
		}
		return nil, err
	}
	return b, nil
}

func (s *session) fileCreateCmd(kind string) *cobra.Command {
	var labels []string
	cmd := &cobra.Command{
		Use:   "create NAME FILE|-",
		Short: fmt.Sprintf("Create a %s from a file or standard input", kind),
		Long: fmt.Sprintf(`Create a %s named NAME with the content of FILE, or of standard input for -.
Names are letters, digits, '_', '.' and '-' (up to 64); the content is up
to 500 KiB.`, kind),
		Example: fmt.Sprintf(`  printf %%s "$DB_PASSWORD" | warrenctl %[1]s create db-password -
  warrenctl %[1]s create tls-cert ./cert.pem --label env=prod
  warrenctl service create --name db --%[1]s db-password localhost/postgres`, kind),
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := api.ValidateSecretName(kind, args[0]); err != nil {
				return usagef(cmd, "%s", err.(*api.Error).Message)
			}
			lbl := map[string]string{}
			for _, l := range labels {
				k, v, err := opts.ParseLabel(l)
				if err != nil {
					return usagef(cmd, "--label: %v", err)
				}
				lbl[k] = v
			}
			data, err := s.readValue(kind, args[1])
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			res, err := c.CreateFile(cmd.Context(), kind, api.SecretRequest{Name: args[0], Labels: lbl, Data: data})
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out(), res.ID)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "a label KEY=VALUE (repeatable)")
	return cmd
}

func (s *session) fileUpdateCmd(kind string) *cobra.Command {
	return &cobra.Command{
		Use:   "update NAME FILE|-",
		Short: fmt.Sprintf("Give a %s a new version; the services that use it roll to it", kind),
		Long: fmt.Sprintf(`Give the %[1]s NAME a new version with the content of FILE, or of standard
input for -. Every service that uses it replaces its tasks under its update
config (parallelism, delay, order), as for a service update; the old
version is dropped once no task holds it (warrenctl %[1]s inspect shows
which tasks hold which version).`, kind),
		Example: fmt.Sprintf(`  printf %%s "$NEW_PASSWORD" | warrenctl %[1]s update db-password -
  warrenctl %[1]s inspect --pretty db-password`, kind),
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := s.readValue(kind, args[1])
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			res, err := c.UpdateFile(cmd.Context(), kind, args[0], data)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out(), "%s %s: version %d\n", kind, res.Spec.Name, res.Latest().Version)
			return nil
		},
	}
}

func (s *session) fileLsCmd(kind string) *cobra.Command {
	var out outputFlag
	var quiet, check bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   fmt.Sprintf("List the %ss", kind),
		Example: fmt.Sprintf("  warrenctl %[1]s ls\n  warrenctl %[1]s ls -q", kind) + map[bool]string{true: "\n  warrenctl secret ls --check"}[kind == api.KindSecret],
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			if check {
				// Every sealed value, secrets and all: the data keys' check.
				return s.checkKeys(cmd, &out)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			var items []api.Secret
			if kind == api.KindSecret {
				items, err = c.Secrets(cmd.Context())
			} else {
				var cs []api.Config
				cs, err = c.Configs(cmd.Context())
				for _, x := range cs {
					items = append(items, api.Secret(x))
				}
			}
			if err != nil {
				return err
			}
			if done, err := listed(s.out(), &out, items, quiet, func(x api.Secret) string { return x.Spec.Name }); done {
				return err
			}
			return format.SecretTable(s.out(), items, s.now())
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print names")
	if kind == api.KindSecret {
		cmd.Flags().BoolVar(&check, "check", false, "open every sealed value (secrets, the CA key, the unlock key) on this manager and report those that do not open, as warrenctl cluster keys --check")
	}
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func (s *session) fileInspectCmd(kind string) *cobra.Command {
	var pretty bool
	long := "Show a secret: its labels, the services that use it, and its versions with\nthe tasks that hold each. Never its value."
	if kind == api.KindConfig {
		long = "Show a config: its labels, the services that use it, and its versions with\nthe tasks that hold each; with --pretty, each version's data too."
	}
	cmd := &cobra.Command{
		Use:     "inspect NAME",
		Short:   fmt.Sprintf("Show a %s's versions and who holds them", kind),
		Long:    long,
		Example: fmt.Sprintf("  warrenctl %[1]s inspect --pretty NAME\n  warrenctl %[1]s inspect NAME    # JSON", kind),
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var obj *api.Secret
			if kind == api.KindSecret {
				obj, err = c.Secret(cmd.Context(), args[0])
			} else {
				var cf *api.Config
				cf, err = c.Config(cmd.Context(), args[0], pretty)
				obj = (*api.Secret)(cf)
			}
			if err != nil {
				return err
			}
			if pretty {
				return format.SecretPretty(s.out(), kind, obj, s.now())
			}
			o := outputFlag{value: format.JSON}
			_, err = o.encode(s.out(), obj)
			return err
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print for people (a config's data included)")
	return cmd
}

func (s *session) fileRmCmd(kind string) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME [NAME...]",
		Aliases: []string{"remove"},
		Short:   fmt.Sprintf("Remove %ss (refused while a service uses one)", kind),
		Example: fmt.Sprintf("  warrenctl %s rm old-password", kind),
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var failed []string
			for _, name := range args {
				if err := c.RemoveFile(cmd.Context(), kind, name); err != nil {
					fmt.Fprintf(s.app.Stderr, "warrenctl: %s\n", errorText(err))
					failed = append(failed, name)
					continue
				}
				fmt.Fprintln(s.out(), name)
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d %ss not removed: %s", len(failed), len(args), kind, strings.Join(failed, ", "))
			}
			return nil
		},
	}
}
