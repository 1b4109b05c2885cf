package controlapi

import (
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// postNodeJournal takes node {ref}'s break-glass journal entries (the
// node, on reconnect); the FSM takes only what follows on, by hash, from
// what it holds.
func (s *Server) postNodeJournal(w http.ResponseWriter, r *http.Request) {
	var req api.JournalUpload
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	if len(req.Entries) == 0 || len(req.Entries) > api.MaxJournalUpload {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "a journal upload holds 1 to %d entries, not %d", api.MaxJournalUpload, len(req.Entries)))
		return
	}
	n, err := s.nodeOf(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdNodeJournal, store.NodeJournal{NodeID: n.ID, Entries: req.Entries})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

// getNodeJournal serves the break-glass journal the managers hold for node
// {ref}.
func (s *Server) getNodeJournal(w http.ResponseWriter, r *http.Request) {
	if s.isWorker() {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "the managers keep the nodes' journals, not this worker: ask a manager (--host https://MANAGER:4242), or read this node's own with warrenctl --local journal"))
		return
	}
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	n, err := s.nodeOf(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	var out []api.JournalEntry
	s.store.View(func(v *store.View) error { out = v.Journal(n.ID); return nil })
	httpx.JSON(w, http.StatusOK, out)
}
