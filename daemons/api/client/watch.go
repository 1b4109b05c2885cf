package client

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// WatchQuery selects what a watch streams.
type WatchQuery struct {
	// Index: stream changes after it. Zero starts with the whole state
	// (a reset, the objects, then synced).
	Index   uint64
	Kinds   []string // api.KindService, KindTask, KindNode; empty: all
	Node    string   // only tasks on this node
	Service string   // only tasks of this service
	// Worker asks for a worker node's scope (its own tasks and node in
	// full, the rest as public projections). A manager sets it from a
	// worker's certificate whatever the worker asks.
	Worker string
}

// Watcher reads one watch stream.
type Watcher struct {
	resp *http.Response
	sc   *bufio.Scanner
}

// Watch opens a stream of changes. Read it with Next; Close it when done.
func (c *Client) Watch(ctx context.Context, q WatchQuery) (*Watcher, error) {
	v := url.Values{}
	if q.Index > 0 {
		v.Set("index", strconv.FormatUint(q.Index, 10))
	}
	if len(q.Kinds) > 0 {
		v.Set("kind", strings.Join(q.Kinds, ","))
	}
	if q.Node != "" {
		v.Set("node", q.Node)
	}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Worker != "" {
		v.Set("worker", q.Worker)
	}
	path := "/v1/watch"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	resp, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &Watcher{resp: resp, sc: sc}, nil
}

// Next returns the next event, blocking until one arrives or the stream
// ends (with an error).
func (w *Watcher) Next() (api.Event, error) {
	var ev api.Event
	if !w.sc.Scan() {
		if err := w.sc.Err(); err != nil {
			return ev, fmt.Errorf("client: watch: %w", err)
		}
		return ev, fmt.Errorf("client: watch: stream closed by the manager")
	}
	if err := json.Unmarshal(w.sc.Bytes(), &ev); err != nil {
		return ev, fmt.Errorf("client: watch: bad line: %w", err)
	}
	return ev, nil
}

// Close ends the stream.
func (w *Watcher) Close() error { return w.resp.Body.Close() }
