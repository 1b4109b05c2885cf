package cli

import (
	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
)

func (s *session) ingressCmd() *cobra.Command {
	cmd := groupCmd("ingress", "Show the HTTP ingress routes",
		`warren-ingress routes HTTP and HTTPS requests by host and path to the
tasks of the service that names the route. Routes are part of a service's
spec: add them with service create --ingress, change them with service
update --ingress-add, --ingress-rm and --ingress-mw, or in a manifest's
ingress list. Two services may not claim the same host and path.`)
	cmd.AddCommand(s.ingressLsCmd())
	return cmd
}

func (s *session) ingressLsCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the ingress routes",
		Long: `List every ingress route of the cluster, one a row: its host and path,
the service and port it goes to, how many of the service's tasks serve it
(BACKENDS, serving/total), where its certificate comes from (TLS:
acme/CHALLENGE, secret:NAME or none) and how the certificate stands
(CERT: pending, valid until DATE, expiring DATE, expired DATE, error).`,
		Example: `  warrenctl ingress ls
  warrenctl ingress ls -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			routes, err := c.IngressRoutes(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := listed(s.out(), &out, routes, false, func(api.IngressRouteStatus) string { return "" }); done {
				return err
			}
			return format.IngressTable(s.out(), routes)
		},
	}
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}
