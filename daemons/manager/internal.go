package manager

import (
	"io"
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// internalCommands are the commands other managers may pass to the leader
// through /v1/internal/command: their own registration and nothing else
// (every other write has its API endpoint, validated there).
var internalCommands = map[store.CommandType]bool{
	store.CmdNodeRegister: true,
}

// postInternalCommand takes an encoded command from another manager (the
// caller is checked by the node port: a manager certificate) and commits it.
func (m *Manager) postInternalCommand(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil || len(b) < 2 {
		writeError(w, api.Errorf(api.CodeInvalid, "an internal command is a type byte and a JSON payload"))
		return
	}
	t := store.CommandType(b[0])
	if !internalCommands[t] {
		writeError(w, api.Errorf(api.CodeForbidden, "command %s is not taken from peers", t))
		return
	}
	if !peerIsManager(r) {
		writeError(w, api.Errorf(api.CodeForbidden, "only managers may send internal commands"))
		return
	}
	var payload any
	switch t {
	case store.CmdNodeRegister:
		var reg store.NodeRegister
		if err := unmarshalStrict(b[1:], &reg); err != nil {
			writeError(w, api.Errorf(api.CodeInvalid, "%v", err))
			return
		}
		if id := peerNodeID(r); id != "" && id != reg.ID {
			writeError(w, api.Errorf(api.CodeForbidden, "a manager registers only itself"))
			return
		}
		payload = reg
	}
	if _, err := m.propose(t, payload); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "committed"})
}
