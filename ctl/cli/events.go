package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) eventsCmd() *cobra.Command {
	var out outputFlag
	var follow bool
	var since, until string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show what happened in the cluster: failed tasks, updates, nodes, execs",
		Long: `Show the cluster's events, oldest first, one line each: the time (UTC),
the type, what it concerns and a message. The managers derive them from
the state's own changes (so every manager holds the same ones) and keep
the last 10,000, for at most 7 days.

Types: ` + strings.Join(api.EventTypes, ", ") + `.

--since starts after an event's seq (the first column of -o json's
"seq"), at a time in RFC 3339 (2026-12-05T10:00:00Z), or a duration ago
(10m, 2h). --until ends at a time or a duration ago. --filter narrows by
type, service (name or ID) and node (hostname or ID); repeat it, or join
filters with commas. -f keeps printing new events until interrupted.

-o json prints each event as one JSON object per line (NDJSON), as
GET /v1/events serves it: a script resumes with --since SEQ, the last
seq it read.`,
		Example: `  warrenctl events --since 1h
  warrenctl events -f --filter type=task.failed,service=web
  warrenctl events --filter node=edge-12 --filter type=node.down --filter type=node.up
  warrenctl events -o json --since 1234`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			q := client.EventQuery{Follow: follow}
			now := s.now()
			if since != "" {
				if n, err := strconv.ParseUint(since, 10, 64); err == nil {
					q.Since = n
				} else if t, err := api.ParseLogSince(since, now); err == nil {
					q.SinceTime = t
				} else {
					return usagef(cmd, "--since %q: give an event seq (1234), a time in RFC 3339 (2026-12-05T10:00:00Z) or a duration ago (10m, 2h)", since)
				}
			}
			if until != "" {
				t, err := api.ParseLogSince(until, now)
				if err != nil {
					return usagef(cmd, "--until %q: give a time in RFC 3339 (2026-12-05T10:00:00Z) or a duration ago (10m, 2h)", until)
				}
				q.Until = t
			}
			for _, f := range filters {
				if err := parseEventFilter(f, &q); err != nil {
					return usagef(cmd, "--filter %q: %v", f, err)
				}
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := c.Events(ctx, q)
			if err != nil {
				var ae *api.Error
				if errors.As(err, &ae) && ae.Code == api.CodeNotFound && strings.Contains(ae.Message, "no endpoint") {
					return fmt.Errorf("the manager at %s does not serve events (GET /v1/events answered 404): it is older than this warrenctl; upgrade it", s.hostAddr())
				}
				return err
			}
			defer st.Close()
			w := s.out()
			for {
				ev, line, err := st.Next()
				switch {
				case errors.Is(err, io.EOF):
					return nil
				case err != nil && ctx.Err() != nil:
					return nil // interrupted while following: that is how -f ends
				case err != nil:
					return err
				}
				if out.value == format.JSON {
					w.Write(append(line, '\n'))
				} else {
					fmt.Fprintln(w, eventLine(&ev))
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().StringVar(&since, "since", "", "show events after a seq (1234), since a time (2026-12-05T10:00:00Z) or for a duration (1h)")
	cmd.Flags().StringVar(&until, "until", "", "show events up to a time (2026-12-05T11:00:00Z) or a duration ago (10m)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "type=TYPE, service=SERVICE or node=NODE (comma-separated, repeatable)")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON)
	cmd.RegisterFlagCompletionFunc("filter", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var c []string
		for _, t := range api.EventTypes {
			c = append(c, "type="+t)
		}
		return append(c, "service=", "node="), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	return cmd
}

// parseEventFilter adds one --filter (KEY=VALUE[,KEY=VALUE…]) to q.
func parseEventFilter(f string, q *client.EventQuery) error {
	for _, kv := range strings.Split(f, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return fmt.Errorf("%q is not KEY=VALUE (type=…, service=…, node=…)", kv)
		}
		switch k {
		case "type":
			if !api.KnownEventType(v) {
				return fmt.Errorf("no event type %q: the types are %s", v, strings.Join(api.EventTypes, ", "))
			}
			q.Types = append(q.Types, v)
		case "service":
			if q.Service != "" && q.Service != v {
				return fmt.Errorf("one service at a time")
			}
			q.Service = v
		case "node":
			if q.Node != "" && q.Node != v {
				return fmt.Errorf("one node at a time")
			}
			q.Node = v
		default:
			return fmt.Errorf("no filter %q: filter by type, service or node", k)
		}
	}
	return nil
}

// eventLine is an event for a person, as docker events prints them:
// TIME TYPE SUBJECT MESSAGE.
func eventLine(ev *api.ClusterEvent) string {
	var subj []string
	if ev.Service != "" {
		subj = append(subj, "service "+ev.Service)
	}
	if ev.TaskID != "" {
		subj = append(subj, "task "+format.ShortID(ev.TaskID))
	}
	switch {
	case ev.Node != "":
		subj = append(subj, "node "+ev.Node)
	case ev.NodeID != "":
		subj = append(subj, "node "+format.ShortID(ev.NodeID))
	}
	msg := ev.Message
	if ev.ExitCode != nil {
		msg = strings.TrimSpace(fmt.Sprintf("%s (exit code %d)", msg, *ev.ExitCode))
	}
	s := fmt.Sprintf("%s  %-23s  %s", ev.Time.UTC().Format(time.RFC3339), ev.Type, strings.Join(subj, " "))
	if msg != "" {
		s += ": " + format.Sanitize(msg, false)
	}
	return s
}
