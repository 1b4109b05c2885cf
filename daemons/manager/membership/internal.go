package membership

import (
	"io"
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// internalCommands are the commands other managers may pass to the leader
// through /v1/internal/command: their own registration, and the events
// their control API records (an exec's), and nothing else (every other
// write has its API endpoint, validated there).
var internalCommands = map[store.CommandType]bool{
	store.CmdNodeRegister: true,
	store.CmdEvent:        true,
}

// postInternalCommand takes an encoded command from another manager (the
// caller is checked by the node port: a manager certificate) and commits it.
func (m *Membership) postInternalCommand(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil || len(b) < 2 {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "an internal command is a type byte and a JSON payload"))
		return
	}
	t := store.CommandType(b[0])
	if !internalCommands[t] {
		httpx.Error(w, api.Errorf(api.CodeForbidden, "command %s is not taken from peers", t))
		return
	}
	var payload any
	switch t {
	case store.CmdNodeRegister:
		var reg store.NodeRegister
		if err := httpx.Unmarshal(b[1:], &reg); err != nil {
			httpx.Error(w, api.Errorf(api.CodeInvalid, "%v", err))
			return
		}
		if c := authz.CallerOf(r.Context()); c.Kind == authz.Manager && c.NodeID != reg.ID {
			httpx.Error(w, api.Errorf(api.CodeForbidden, "a manager registers only itself"))
			return
		}
		payload = reg
	case store.CmdEvent:
		var rec store.EventRecord
		if err := httpx.Unmarshal(b[1:], &rec); err != nil {
			httpx.Error(w, api.Errorf(api.CodeInvalid, "%v", err))
			return
		}
		if err := rec.Validate(); err != nil {
			httpx.Error(w, err)
			return
		}
		payload = rec
	}
	if _, err := m.propose(r.Context(), t, payload); err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "committed"})
}
