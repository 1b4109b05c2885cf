package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// EventQuery selects the cluster's events (GET /v1/events).
type EventQuery struct {
	// Since is the last seq the caller saw: events after it. SinceTime,
	// if set instead, starts at that time.
	Since     uint64
	SinceTime time.Time
	// Until ends the list (and a follow) at that time.
	Until time.Time
	// Types, Service (ID or name) and Node (ID or hostname) narrow it.
	Types         []string
	Service, Node string
	// Follow streams new events as they happen, until ctx ends.
	Follow bool
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	switch {
	case q.Since > 0:
		v.Set("since", strconv.FormatUint(q.Since, 10))
	case !q.SinceTime.IsZero():
		v.Set("since", q.SinceTime.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if len(q.Types) > 0 {
		v.Set("type", strings.Join(q.Types, ","))
	}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Node != "" {
		v.Set("node", q.Node)
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	return v
}

// EventStream reads the events of one GET /v1/events, oldest first.
type EventStream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

// Events opens the cluster's events. Read them with Next; Close the
// stream when done.
func (c *Client) Events(ctx context.Context, q EventQuery) (*EventStream, error) {
	path := "/v1/events"
	if v := q.values(); len(v) > 0 {
		path += "?" + v.Encode()
	}
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &EventStream{resp: resp, sc: sc}, nil
}

// Next returns the next event and its line as the manager sent it (one
// JSON object, no newline; valid until the next call). At the end of a
// stream that does not follow, it returns io.EOF.
func (s *EventStream) Next() (api.ClusterEvent, []byte, error) {
	var ev api.ClusterEvent
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return ev, nil, fmt.Errorf("client: events: %w", err)
		}
		return ev, nil, io.EOF
	}
	line := s.sc.Bytes()
	if err := json.Unmarshal(line, &ev); err != nil {
		return ev, nil, fmt.Errorf("client: events: bad line: %w", err)
	}
	return ev, line, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.resp.Body.Close() }
