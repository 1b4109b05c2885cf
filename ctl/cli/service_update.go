package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// errNotSupported marks flags warrenctl knows from docker but cannot do yet.
var errNotSupported = errors.New("not supported yet")

// conflictRetries bounds how often an update is redone after another
// writer changed the object between our read and our write.
const conflictRetries = 5

func (s *session) serviceUpdateCmd() *cobra.Command {
	var f specFlags
	var w waitOpts
	var dryRun, rollback, force bool
	cmd := &cobra.Command{
		Use:   "update SERVICE",
		Short: "Change a service",
		Long: `Change a service: warrenctl reads it, applies the flags given, and
writes it back naming the version it read. If someone else changed the
service in between, it reads it again and retries.

A change that reaches the containers (image, env, ports, limits, ...)
rolls out by the service's update policy; replicas, labels, ingress
routes and the policies themselves change without restarting tasks. Unless -d is given,
warrenctl waits until the tasks run the new spec, printing progress on
stderr, slot by slot, until the update completes (exit 0), pauses or
is rolled back by its failure action (exit 1, with the reason).
--rollback returns to the spec before the last update (service
rollback).
--dry-run shows the change and what the manager would do, and changes
nothing.

--force (restart the tasks without a change) is not supported yet.`,
		Example: `  warrenctl service update --image nginx:1.27 web
  warrenctl service update --env-add LOG_LEVEL=debug --env-rm OLD web
  warrenctl service update --publish-add 8443:443 --publish-rm 80 web
  warrenctl service update --replicas 5 --update-parallelism 2 web
  warrenctl service update --ingress-add host=www.example.com,port=80,tls=secret:www-cert --ingress-rm old.example.com web
  warrenctl service update --ingress-mw host=www.example.com,basic-auth=web-users,realm=Staff web
  warrenctl service update --rollback web`,
		Args:              exactArgs(1),
		ValidArgsFunction: s.completeService,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if force {
				return fmt.Errorf("--force is %w: to restart the tasks, change something in the spec, e.g. --env-add RESTARTED_AT=$(date +%%s)", errNotSupported)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			if rollback {
				changed := false
				cmd.Flags().Visit(func(fl *pflag.Flag) {
					switch fl.Name {
					case "rollback", "detach", "timeout", "quiet", "host":
					default:
						changed = true
					}
				})
				if changed {
					return usagef(cmd, "--rollback goes alone: it returns to the previous spec; change it afterwards")
				}
				if dryRun {
					return usagef(cmd, "--rollback does not do a dry run yet: service inspect shows the previous spec under previousSpec")
				}
				return s.rollback(cmd.Context(), ref, w)
			}
			for attempt := 1; ; attempt++ {
				cur, err := c.Service(cmd.Context(), ref, client.ReadOptions{})
				if err != nil {
					return err
				}
				spec := cloneSpec(&cur.Spec)
				if err := f.apply(cmd.Flags(), &spec, s.app.Getenv); err != nil {
					return usagef(cmd, "%v", err)
				}
				api.NormalizeSpec(&spec)
				if api.SpecEqual(&cur.Spec, &spec) {
					s.progressf("service %s: nothing to change", cur.Spec.Name)
					fmt.Fprintln(s.out(), ref)
					return nil
				}
				if err := api.ValidateServiceSpec(&spec); err != nil {
					return err
				}
				if dryRun {
					dr, err := c.UpdateServiceDryRun(cmd.Context(), cur.ID, spec, 0)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.out(), "Dry run: service %s would change:\n%s", cur.Spec.Name, format.SpecDiff(&cur.Spec, &spec))
					return s.printPlan(cmd.Context(), dr)
				}
				upd, err := c.UpdateService(cmd.Context(), cur.ID, spec, cur.Version)
				if api.IsCode(err, api.CodeConflict) && attempt < conflictRetries {
					// Retry only if the service moved on; a name or port
					// conflict will not go away by itself.
					if again, e := c.Service(cmd.Context(), cur.ID, client.ReadOptions{}); e == nil && again.Version != cur.Version {
						continue
					}
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(s.out(), ref)
				what := configured
				if upd.SpecVersion != cur.SpecVersion {
					what = updated
				}
				return s.converge(cmd.Context(), upd, w, what)
			}
		},
	}
	f.register(cmd, true)
	addWaitFlags(cmd, &w)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the change and what the manager would do, and change nothing")
	cmd.Flags().BoolVar(&rollback, "rollback", false, "return to the spec before the last update")
	cmd.Flags().BoolVar(&force, "force", false, "not supported yet")
	cmd.Flags().MarkHidden("force")
	return cmd
}

func (s *session) serviceRollbackCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Return a service to its spec before the last update",
		Long: `Return a service to the spec it had before its last update, paced by
its rollback policy (--rollback-* on service update; without one, as
its update policy says, pausing on a failure). Tasks the update never
reached are left alone. Unless -d is given, warrenctl follows the
rollback slot by slot until it ends: exit 0 when it is rolled back,
1 if it pauses or --timeout passes (it goes on in the cluster).

The same as service update --rollback.`,
		Example: `  warrenctl service rollback web
  warrenctl service rollback -d web`,
		Args:              exactArgs(1),
		ValidArgsFunction: s.completeService,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.rollback(cmd.Context(), args[0], w)
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}

func (s *session) servicePromoteCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{
		Use:   "promote SERVICE",
		Short: "Promote the canaries of a service's update",
		Long: `Promote the canaries of an update started with --update-canary: the
old tasks of their slots stop and the update goes on over the others,
paced by the update policy. Unless -d is given, warrenctl follows it
slot by slot until it ends: exit 0 when it completes, 1 if it pauses,
rolls back, or --timeout passes (it goes on in the cluster).

To drop the canaries instead, roll back: warrenctl service rollback
SERVICE stops only them.`,
		Example: `  warrenctl service update --image shop:2 --update-canary 1 shop
  warrenctl service ps shop
  warrenctl service promote shop`,
		Args:              exactArgs(1),
		ValidArgsFunction: s.completeService,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			svc, err := c.PromoteService(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out(), args[0])
			if w.detach {
				return nil
			}
			return s.follow(cmd.Context(), []*follower{newFollower(svc, updated)}, w)
		},
	}
	addWaitFlags(cmd, &w)
	return cmd
}

// rollback rolls the service ref back and follows the rollback.
func (s *session) rollback(ctx context.Context, ref string, w waitOpts) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	// The manager rolls back from the version it reads; the orchestrator
	// may write the service (its update status) in between, so retry
	// while the service moves on.
	for attempt := 1; ; attempt++ {
		before, err := c.Service(ctx, ref, client.ReadOptions{})
		if err != nil {
			return err
		}
		svc, err := c.RollbackService(ctx, before.ID)
		if api.IsCode(err, api.CodeConflict) && attempt < conflictRetries {
			if again, e := c.Service(ctx, before.ID, client.ReadOptions{}); e == nil && again.Version != before.Version {
				continue
			}
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out(), ref)
		if svc.SpecVersion == before.SpecVersion {
			// Only what does not reach the tasks changed back.
			return s.converge(ctx, svc, w, configured)
		}
		if f := newFollower(svc, rolledBack); f.rolling && !w.detach {
			f.from = before.SpecVersion // the manager forgets it on a rollback
			return s.follow(ctx, []*follower{f}, w)
		}
		return s.converge(ctx, svc, w, rolledBack)
	}
}
