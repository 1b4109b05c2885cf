package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) serviceLogsCmd() *cobra.Command {
	var follow, raw bool
	var tail string
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Show the output of a service's tasks",
		Long: `Show what the service's tasks write to stdout and stderr, each line
prefixed with its task's name, as the manager serves it from
GET /v1/services/{ref}/logs. -f keeps printing new lines until
interrupted.

What a container writes may hold terminal control sequences. When
stdout is a terminal, control characters other than tab and newline are
shown escaped (ESC as \u001b, CR as \r, invalid UTF-8 as \xff) unless
--raw is given; when stdout is a pipe or a file, the output is passed on
byte for byte.

A manager that does not serve logs answers 404: read them on the node
that runs the task instead, where the agent keeps them under its data
directory (logs/).`,
		Example: `  warrenctl service logs web
  warrenctl service logs -f --tail 100 web`,
		Args:              exactArgs(1),
		ValidArgsFunction: s.completeService,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if follow {
				q.Set("follow", "1")
			}
			if tail != "all" {
				n, err := strconv.ParseUint(tail, 10, 32)
				if err != nil {
					return usagef(cmd, "--tail %q: give a number of lines or all", tail)
				}
				q.Set("tail", strconv.FormatUint(n, 10))
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			// Resolve the service first, so that a 404 from the logs
			// endpoint means the endpoint, not the service, is missing.
			svc, err := c.Service(cmd.Context(), args[0], client.ReadOptions{})
			if err != nil {
				return err
			}
			path := "/v1/services/" + url.PathEscape(svc.ID) + "/logs"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			body, err := stream(cmd.Context(), s.hostAddr(), path)
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
			if _, err := io.Copy(out, body); err != nil && cmd.Context().Err() == nil {
				return fmt.Errorf("service %s: reading logs: %w", svc.Spec.Name, err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "print only the last N lines of each task")
	cmd.Flags().BoolVar(&raw, "raw", false, "pass control characters to the terminal as the containers wrote them")
	return cmd
}

// stream GETs path from the manager at host and returns the body as it
// arrives. The typed client reads whole responses only, so this dials
// the same way client.New does: unix:///PATH, /PATH or http(s)://HOST.
func stream(ctx context.Context, host, path string) (io.ReadCloser, error) {
	hc, base := &http.Client{}, ""
	switch {
	case strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "/"):
		sock := strings.TrimPrefix(host, "unix://")
		hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		base = "http://warren"
	case strings.HasPrefix(host, "http://") || strings.HasPrefix(host, "https://"):
		u, err := url.Parse(host)
		if err != nil {
			return nil, err
		}
		base = u.Scheme + "://" + u.Host
	default:
		return nil, fmt.Errorf("host %q: use unix:///path/to/api.sock or http://host:port", host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return nil, fmt.Errorf("%w at %s (%v): is warren-manager running, and may you use its socket (root or group warren)?", client.ErrUnreachable, host, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			return nil, &e
		}
		code := api.CodeInternal
		if resp.StatusCode == http.StatusNotFound {
			code = api.CodeNotFound
		}
		return nil, &api.Error{Code: code, Message: fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))}
	}
	return resp.Body, nil
}
