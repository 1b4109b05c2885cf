package membership

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Join tokens. The cluster keeps only a hash of each token's secret: a
// token is shown once, to the operator who asked for it, and a stolen
// state database or Raft log gives none away. Manager tokens expire
// (DefaultManagerTokenTTL unless asked otherwise): one grants a seat in
// Raft and the CA's key. Worker tokens last until rotated or removed,
// unless given a ttl, so that an image flashed weeks later still joins.

// DefaultManagerTokenTTL is how long a manager token lasts when no ttl is
// given.
const DefaultManagerTokenTTL = 24 * time.Hour

// maxLiveTokens bounds the live tokens of a kind: each request makes one.
// maxRevokedTokens is how many revoked tokens are remembered.
const (
	maxLiveTokens    = 16
	maxRevokedTokens = 16
)

// newToken makes a token of kind (revoking the kind's others with rotate)
// and returns it with its record.
func (m *Membership) newToken(ctx context.Context, kind string, rotate bool, ttl time.Duration) (string, pki.TokenRecord, error) {
	if ttl == 0 && kind == api.RoleManager {
		ttl = DefaultManagerTokenTTL
	}
	// One at a time: each writes the whole list it read.
	m.tokenMu.Lock()
	defer m.tokenMu.Unlock()
	var tokens []store.JoinToken
	m.store.View(func(v *store.View) error { tokens = v.JoinTokens(); return nil })
	now := time.Now().UTC()
	ca, err := m.clusterCA()
	if err != nil {
		return "", pki.TokenRecord{}, api.Errorf(api.CodeUnavailable, "no token yet: %v", err)
	}
	tok, rec, err := pki.NewToken(pki.Role(kind), ca.Digest(), ttl, now)
	if err != nil {
		return "", pki.TokenRecord{}, api.Errorf(api.CodeInternal, "%v", err)
	}
	// Rotation revokes the kind's older tokens. Expired tokens are
	// dropped; the newest revoked ones are kept a while, so that a device
	// presenting one is told it was revoked.
	keep := []store.JoinToken{{TokenRecord: rec}}
	live, revoked := 1, 0
	for i := len(tokens) - 1; i >= 0; i-- { // newest first
		t := tokens[i]
		if !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt) {
			continue
		}
		if string(t.Kind) == kind && rotate {
			t.Revoked = true
		}
		if t.Revoked {
			if revoked++; revoked > maxRevokedTokens {
				continue
			}
		} else if string(t.Kind) == kind {
			live++
		}
		keep = append(keep, t)
	}
	slices.Reverse(keep) // oldest first, as stored
	if live > maxLiveTokens {
		return "", pki.TokenRecord{}, api.Errorf(api.CodeConflict, "%d %s tokens are live already: revoke the old ones (warrenctl join-token %s --rotate, or warrenctl join-token rm ID)", live-1, kind, kind)
	}
	if _, err := m.propose(ctx, store.CmdJoinTokens, store.JoinTokens{Tokens: keep}); err != nil {
		return "", pki.TokenRecord{}, err
	}
	return tok, rec, nil
}

// tokenInfo is what the API says of a token record.
func tokenInfo(rec pki.TokenRecord, token string) api.JoinTokenInfo {
	return api.JoinTokenInfo{ID: rec.ID, Kind: string(rec.Kind), Token: token, CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt, Revoked: rec.Revoked}
}

// postJoinToken answers POST /v1/join-tokens/{kind} (?ttl=D, ?rotate;
// POST /v1/join-tokens/{kind}/rotate is ?rotate): a new token, shown once.
func (m *Membership) postJoinToken(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if kind != api.RoleWorker && kind != api.RoleManager {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "%q: ask for a worker or a manager token", kind))
		return
	}
	var ttl time.Duration
	if s := r.URL.Query().Get("ttl"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute {
			httpx.Error(w, api.Errorf(api.CodeInvalid, "ttl %q: give a duration of a minute or more, like 24h", s))
			return
		}
		ttl = d
	}
	rotate := httpx.Bool(r, "rotate") || r.PathValue("action") == "rotate"
	tok, rec, err := m.newToken(r.Context(), kind, rotate, ttl)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	info := tokenInfo(rec, tok)
	info.Managers = m.managerAddrs()
	httpx.JSON(w, http.StatusOK, info)
}

// listJoinTokens answers GET /v1/join-tokens: the live tokens, without
// their secrets (the cluster does not have them).
func (m *Membership) listJoinTokens(w http.ResponseWriter, r *http.Request) {
	out := []api.JoinTokenInfo{}
	now := time.Now()
	m.store.View(func(v *store.View) error {
		for _, t := range v.JoinTokens() {
			if !t.Revoked && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)) {
				out = append(out, tokenInfo(t.TokenRecord, ""))
			}
		}
		return nil
	})
	httpx.JSON(w, http.StatusOK, out)
}

// deleteJoinToken answers DELETE /v1/join-tokens/{id}: the token is
// revoked at once.
func (m *Membership) deleteJoinToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m.tokenMu.Lock()
	defer m.tokenMu.Unlock()
	var tokens []store.JoinToken
	m.store.View(func(v *store.View) error { tokens = v.JoinTokens(); return nil })
	i := slices.IndexFunc(tokens, func(t store.JoinToken) bool { return t.ID == id && !t.Revoked })
	if i < 0 {
		httpx.Error(w, api.Errorf(api.CodeNotFound, "no live join token %q: list them with warrenctl join-token ls", id))
		return
	}
	tokens[i].Revoked = true
	if _, err := m.propose(r.Context(), store.CmdJoinTokens, store.JoinTokens{Tokens: tokens}); err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, tokenInfo(tokens[i].TokenRecord, ""))
}

// InitTokens makes a new cluster's first join tokens (warren init prints
// them: the only time they are shown).
func (m *Membership) InitTokens(ctx context.Context) ([]api.JoinTokenInfo, error) {
	var out []api.JoinTokenInfo
	for _, kind := range []string{api.RoleWorker, api.RoleManager} {
		tok, rec, err := m.newToken(ctx, kind, false, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, tokenInfo(rec, tok))
	}
	return out, nil
}
