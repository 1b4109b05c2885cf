package cli

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) serviceCreateCmd() *cobra.Command {
	var f specFlags
	var w waitOpts
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [ARG...]",
		Short: "Create a service",
		Long: `Create a service that runs IMAGE. ARGs replace the image's command (its
CMD); --entrypoint replaces its entrypoint. Options after IMAGE belong
to the command, as with docker.

Without --name the service gets a generated name (svc-xxxxx). The new
service's ID is printed on stdout. Unless -d is given, warrenctl then
waits until the tasks run (or one fails or is rejected, or --timeout
passes), printing progress and the reason of any pending task on stderr.

--dry-run asks the manager what it would do (where each task would go,
or why it would wait) and changes nothing.`,
		Example: `  warrenctl service create --name web --replicas 3 -p 8080:80 nginx:alpine
  warrenctl service create --name dns --mode global -p 53:53/udp --constraint node.labels.dns==yes localhost/dns
  warrenctl service create --name job --restart-condition on-failure --limit-memory 64M busybox sh -c 'echo hi; sleep 60'
  warrenctl service create --dry-run --name web --reserve-memory 1G nginx
  warrenctl service create --name shop -p 8080 --ingress host=shop.example.com,port=8080 \
      --ingress host=shop.example.com,path=/api,port=9000,strip-prefix \
      --ingress-mw host=shop.example.com,path=/api,allow=10.0.0.0/8,rate=10,burst=20 localhost/shop
  warrenctl service create --name ntp --cap-drop ALL --cap-add SYS_TIME --user 65534 --pids-limit 64 localhost/ntpd`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := api.ServiceSpec{Name: f.name, Image: args[0]}
			if len(args) > 1 {
				spec.Args = args[1:]
			}
			if err := f.apply(cmd.Flags(), &spec, s.app.Getenv); err != nil {
				return usagef(cmd, "%v", err)
			}
			api.DefaultReplicas(&spec, cmd.Flags().Changed("replicas"))
			if spec.Name == "" {
				spec.Name = randomName()
			}
			api.NormalizeSpec(&spec)
			if err := api.ValidateServiceSpec(&spec); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			if dryRun {
				dr, err := c.CreateServiceDryRun(cmd.Context(), spec)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out(), "Dry run: service %s would be created (%s).\n", spec.Name, describeMode(&spec))
				return s.printPlan(cmd.Context(), dr)
			}
			svc, err := c.CreateService(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out(), svc.ID)
			return s.converge(cmd.Context(), svc, w, created)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd, false)
	addWaitFlags(cmd, &w)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what the manager would do, and change nothing")
	return cmd
}

// randomName makes a DNS-safe service name, as docker makes one up.
func randomName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := []byte("svc-xxxxx")
	for i := 4; i < len(b); i++ {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

func describeMode(s *api.ServiceSpec) string {
	if s.IsGlobal() {
		return "global: one task per eligible node"
	}
	return fmt.Sprintf("replicated, %d replica%s", s.Replicas, plural(int(s.Replicas)))
}

// printPlan writes what a dry run says the manager would do to the tasks.
func (s *session) printPlan(ctx context.Context, dr *api.DryRun) error {
	names := map[string]string{}
	if len(dr.Tasks) > 0 {
		c, err := s.client()
		if err != nil {
			return err
		}
		nodes, err := c.Nodes(ctx, client.ReadOptions{})
		if err != nil {
			return err
		}
		names = hostnames(nodes)
	}
	format.SortTasks(dr.Tasks)
	for i := range dr.Tasks {
		t := &dr.Tasks[i]
		switch {
		case t.NodeID != "" && t.Status.State != api.TaskPending:
			node := names[t.NodeID]
			if node == "" {
				node = t.NodeID
			}
			fmt.Fprintf(s.out(), "  %s would start on %s\n", t.Name(), node)
		default:
			fmt.Fprintf(s.out(), "  %s would wait: %s\n", t.Name(), format.TaskError(t))
		}
	}
	if n := len(dr.Stops); n > 0 {
		fmt.Fprintf(s.out(), "  %d task%s would stop\n", n, plural(n))
	}
	if len(dr.Tasks) == 0 && len(dr.Stops) == 0 {
		fmt.Fprintln(s.out(), "  no task would start or stop")
	}
	return nil
}
