package client

import (
	"context"
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
)

// UploadJournal gives the managers node nodeID's break-glass journal
// entries (the node's agent, on reconnect).
func (c *Client) UploadJournal(ctx context.Context, nodeID string, entries []api.JournalEntry) error {
	return c.do(ctx, http.MethodPost, "/v1/nodes/"+esc(nodeID)+"/journal", api.JournalUpload{Entries: entries}, nil)
}

// NodeJournal is the break-glass journal the managers hold for a node.
func (c *Client) NodeJournal(ctx context.Context, ref string) ([]api.JournalEntry, error) {
	var out []api.JournalEntry
	return out, c.do(ctx, http.MethodGet, "/v1/nodes/"+esc(ref)+"/journal", nil, &out)
}

// The agent socket's break-glass routes (a client of /run/warren/agent.sock).

// LocalStatus lists the node's tasks as its agent sees them.
func (c *Client) LocalStatus(ctx context.Context) (*api.LocalStatus, error) {
	var out api.LocalStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/local/tasks", nil, &out)
}

// LocalAction stops, starts or restarts a task on a cut-off node; a sticky
// stop lasts past reconnect.
func (c *Client) LocalAction(ctx context.Context, taskID, action string, sticky bool) error {
	path := "/v1/local/tasks/" + esc(taskID) + "/" + esc(action)
	if sticky {
		path += "?sticky=true"
	}
	return c.do(ctx, http.MethodPost, path, nil, nil)
}

// LocalOverride pins an override on a task of a cut-off node.
func (c *Client) LocalOverride(ctx context.Context, taskID string, o api.TaskOverride) error {
	return c.do(ctx, http.MethodPut, "/v1/local/tasks/"+esc(taskID)+"/override", o, nil)
}

// LocalClearOverride drops a task's override.
func (c *Client) LocalClearOverride(ctx context.Context, taskID string) error {
	return c.do(ctx, http.MethodDelete, "/v1/local/tasks/"+esc(taskID)+"/override", nil, nil)
}

// LocalJournal is the node's own journal, and why its chain breaks ("" if
// it holds).
func (c *Client) LocalJournal(ctx context.Context) ([]api.JournalEntry, string, error) {
	var out struct {
		Entries []api.JournalEntry `json:"entries"`
		Broken  string             `json:"broken"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/local/journal", nil, &out)
	return out.Entries, out.Broken, err
}
