package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/pki"
)

// operatorRoles are the roles an operator certificate can carry,
// strongest first.
var operatorRoles = []string{string(pki.RoleAdmin), string(pki.RoleOperator), string(pki.RoleViewer)}

func (s *session) operatorCmd() *cobra.Command {
	cmd := groupCmd("operator", "Manage who may use the cluster from other machines",
		`An operator is a person (or a program) who reaches a manager's node port,
https://HOST:4242, with a certificate of their own. Its role says what it
may do:

  admin      everything
  operator   services and nodes; not the CA, join tokens, operators or
             node roles (promote, demote)
  viewer     read only

On a device, warrenctl needs no certificate: the local socket is for root
and group warren. Removing an operator refuses its certificates at once,
on every manager.`)
	cmd.AddCommand(s.operatorAddCmd(), s.operatorLsCmd(), s.operatorRmCmd())
	return cmd
}

func (s *session) operatorAddCmd() *cobra.Command {
	var role, out string
	var ttl time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "add NAME --role admin|operator|viewer --out DIR",
		Short: "Make an operator certificate, for warrenctl on another machine",
		Long: `Make a key here, have the cluster sign a certificate for it with a role,
and write the operator's credentials into DIR:

  operator.key   the key (mode 0600): it is made here and never sent
  operator.crt   the certificate
  ca.crt         the cluster's CA, to check the managers with

DIR is made with mode 0700; files already in it are kept unless --force.
Copy DIR to the operator's machine and point warrenctl at a manager's node
port with it (--host and --tls-dir, or $WARREN_HOST and $WARREN_TLS_DIR).

Adding a name again renews it: a new certificate with the role given
(certificates issued before stay good while the role is the same).
Remove an operator with warrenctl operator rm.`,
		Example: `  warrenctl operator add alice --role admin --out ./alice
  warrenctl operator add dashboard --role viewer --ttl 720h --out /etc/dashboard/warren
  WARREN_HOST=https://10.0.0.1:4242 WARREN_TLS_DIR=./alice warrenctl node ls`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			switch {
			case role == "":
				return usagef(cmd, "--role is required: give %s", strings.Join(operatorRoles, ", "))
			case !pki.Role(role).IsOperator():
				return usagef(cmd, "--role %q: give %s", role, strings.Join(operatorRoles, ", "))
			case out == "":
				return usagef(cmd, "--out is required: give the directory to write the key and certificates into")
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			dir := expandHome(out, s.app.Getenv("HOME"))
			made, err := prepareCredentialsDir(dir, force)
			if err != nil {
				return err
			}
			key, keyPEM, err := pki.NewKey()
			if err != nil {
				return err
			}
			csr, err := pki.NewCSR(key, name)
			if err != nil {
				return err
			}
			resp, err := c.AddOperator(cmd.Context(), api.OperatorRequest{Name: name, Role: role, CSR: csr, TTL: api.Duration(ttl)})
			if err != nil {
				if made {
					os.Remove(dir) // made for nothing (only if still empty)
				}
				return err
			}
			if err := writeCredentials(dir, []credentialFile{
				{client.OperatorKeyFile, keyPEM, 0o600},
				{client.OperatorCertFile, []byte(resp.CertPEM), 0o644},
				{client.OperatorCAFile, []byte(resp.BundlePEM), 0o644},
			}); err != nil {
				return fmt.Errorf("%w: the certificate of operator %s was issued but not saved: fix that and run warrenctl operator add %s again (it renews)", err, name, name)
			}
			s.printOperatorAdded(resp, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "what the operator may do: "+strings.Join(operatorRoles, ", ")+" (required)")
	cmd.Flags().StringVar(&out, "out", "", "the directory to write operator.key, operator.crt and ca.crt into (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the certificate lasts, an hour to a year (default 2160h: 90 days)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the files of an earlier certificate in --out")
	cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(operatorRoles, cobra.ShellCompDirectiveNoFileComp))
	cmd.MarkFlagDirname("out")
	return cmd
}

// printOperatorAdded says what operator add made and how to use it.
func (s *session) printOperatorAdded(resp *api.OperatorResponse, dir string) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	op := resp.Operator
	w := s.out()
	fmt.Fprintf(w, "Operator %s (%s) added; the certificate expires %s (%s).\n", op.Name, op.Role,
		format.Time(op.ExpiresAt), format.Until(s.now(), op.ExpiresAt))
	fmt.Fprintf(w, "Wrote %s: keep it secret (it was made here and never sent), with %s and %s.\n\n",
		filepath.Join(dir, client.OperatorKeyFile), client.OperatorCertFile, client.OperatorCAFile)
	addr := "MANAGER:4242"
	if len(resp.Managers) > 0 {
		addr = resp.Managers[0]
	}
	fmt.Fprintf(w, "Copy %s to the operator's machine, then:\n\n    %s=https://%s %s=%s warrenctl node ls\n\n", dir, EnvHost, addr, EnvTLSDir, dir)
	if len(resp.Managers) > 0 {
		fmt.Fprintf(w, "The managers' node ports: %s\n", strings.Join(resp.Managers, ", "))
	} else {
		fmt.Fprintf(w, "No manager has a node port on record: start one with --listen-addr 0.0.0.0:4242 and use its address.\n")
	}
}

// credentialFile is one file of an operator's credentials.
type credentialFile struct {
	name string
	data []byte
	mode os.FileMode
}

// prepareCredentialsDir makes dir (mode 0700) if it is missing, and
// refuses to go on, before anything is issued, if credentials are in it
// already and force is not given. made says whether it made dir.
func prepareCredentialsDir(dir string, force bool) (made bool, err error) {
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("--out %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("--out %s: %w", dir, err)
	case !fi.IsDir():
		return false, fmt.Errorf("--out %s is not a directory: give a directory for the key and certificates", dir)
	}
	if force {
		return false, nil
	}
	for _, name := range []string{client.OperatorKeyFile, client.OperatorCertFile, client.OperatorCAFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return false, fmt.Errorf("%s exists already: choose another --out, or give --force to replace it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("--out %s: %w", dir, err)
		}
	}
	return false, nil
}

// writeCredentials writes each file whole, or leaves it as it was: through
// a temporary file in dir, renamed over the old one.
func writeCredentials(dir string, files []credentialFile) error {
	for _, f := range files {
		tmp, err := os.CreateTemp(dir, "."+f.name+".*")
		if err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(dir, f.name), err)
		}
		err = tmp.Chmod(f.mode)
		if err == nil {
			_, err = tmp.Write(f.data)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), filepath.Join(dir, f.name))
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return nil
}

func (s *session) operatorLsCmd() *cobra.Command {
	var out outputFlag
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the operators",
		Long: `List the operators with their role, when their certificate was issued and
when it expires.`,
		Example: `  warrenctl operator ls
  warrenctl operator ls -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ops, err := c.Operators(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(s.out(), &out, ops, quiet, func(o api.Operator) string { return o.Name }); done {
				return err
			}
			return format.OperatorTable(s.out(), ops, s.now())
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print names")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

func (s *session) operatorRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME [NAME...]",
		Aliases: []string{"remove"},
		Short:   "Remove operators: their certificates are refused at once",
		Long: `Remove operators. Every manager refuses their certificates from the next
request on, although the certificates have not expired. A removed name
cannot be given to a new operator for a year (the longest a certificate
can last). Each removed operator is printed.`,
		Example: `  warrenctl operator rm alice`,
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var errs multiError
			for _, name := range args {
				if err := c.RemoveOperator(cmd.Context(), name); err != nil {
					if !api.NotFound(err) {
						return err
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(s.out(), name)
			}
			return errs.err()
		},
	}
}
