package membership

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// CA rotation with no downtime (daemons/pki/README.md has the states):
//
//	rotate:  new CA B, cross-signed by the old A; every node trusts [B, A];
//	         managers sign with B; every node renews under B (managers
//	         themselves, workers through a manager) as soon as it sees the
//	         new trust, while old and new certificates still talk.
//	finish:  trust [B] only; A's key is gone; tokens are renewed; a node
//	         that never renewed must join again.
//
// Managers see the CA record in their state; workers ask a manager for the
// trust bundle (GET /v1/ca) every half minute.

// workerCAPoll is how often a worker asks what to trust (tests shorten it).
var workerCAPoll = 30 * time.Second

// caInfo answers GET /v1/ca: what every node must trust.
func (m *Membership) caInfo(w http.ResponseWriter, r *http.Request) {
	var rec *store.CA
	m.store.View(func(v *store.View) error { rec = v.CA(); return nil })
	if rec == nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "the cluster has no CA yet"))
		return
	}
	_, bundle, err := m.caAndTrust()
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeInternal, "%v", err))
		return
	}
	httpx.JSON(w, http.StatusOK, api.CAInfo{Digest: pki.Digest(bundle.Active()), Digests: bundle.Digests(),
		Rotating: rec.Rotating, BundlePEM: string(bundle.PEM()), CertGrace: api.Duration(m.certGrace())})
}

// rotateCA answers POST /v1/ca/rotate (?finish ends a rotation).
func (m *Membership) rotateCA(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var rec *store.CA
	var clusterID string
	m.store.View(func(v *store.View) error {
		rec = v.CA()
		if c := v.Cluster(); c != nil {
			clusterID = c.ClusterID
		}
		return nil
	})
	if rec == nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "the cluster has no CA yet"))
		return
	}
	cur, err := m.loadCA(rec)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	now := time.Now().UTC()
	var next store.CA
	switch {
	case httpx.Bool(r, "finish"):
		if !rec.Rotating {
			httpx.Error(w, api.Errorf(api.CodeConflict, "no CA rotation is running: start one with warrenctl ca rotate"))
			return
		}
		b := cur.WithoutCrossSigned()
		bundle, _ := pki.NewBundle(b.Certificate())
		if next, err = m.caRecord(b); err != nil {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
			return
		}
		next.BundlePEM, next.At = string(bundle.PEM()), now
	default:
		if rec.Rotating {
			httpx.Error(w, api.Errorf(api.CodeConflict, "a CA rotation is running: finish it first (warrenctl ca rotate --finish) once every node shows ready"))
			return
		}
		b, err := pki.NewCA(clusterID, now)
		if err != nil {
			httpx.Error(w, api.Errorf(api.CodeInternal, "%v", err))
			return
		}
		bx, err := cur.CrossSign(b, now)
		if err != nil {
			httpx.Error(w, api.Errorf(api.CodeInternal, "%v", err))
			return
		}
		bundle, err := pki.NewBundle(b.Certificate(), cur.Certificate())
		if err != nil {
			httpx.Error(w, api.Errorf(api.CodeInternal, "%v", err))
			return
		}
		if next, err = m.caRecord(bx); err != nil {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
			return
		}
		next.BundlePEM, next.Rotating, next.At = string(bundle.PEM()), true, now
	}
	if _, err := m.propose(ctx, store.CmdCA, next); err != nil {
		httpx.Error(w, err)
		return
	}
	if !next.Rotating {
		// Tokens pinned the old CA: make new ones on request.
		var tokens []store.JoinToken
		m.store.View(func(v *store.View) error { tokens = v.JoinTokens(); return nil })
		for i := range tokens {
			tokens[i].Revoked = true
		}
		m.propose(ctx, store.CmdJoinTokens, store.JoinTokens{Tokens: tokens})
	}
	m.log.Info("CA rotation", "finished", !next.Rotating)
	m.caInfo(w, r)
}

// followCA keeps this node's trust and certificate in step with the
// cluster's CA: from the state on a manager, from a manager on a worker.
func (m *Membership) followCA(ctx context.Context) {
	for {
		err := m.followCAOnce(ctx)
		if err != nil {
			m.log.Debug("follow the CA", "err", err)
		}
		if m.isWorker() {
			err = core.Sleep(ctx, workerCAPoll)
		} else {
			err = m.paceCheck(ctx, err == nil)
		}
		if err != nil {
			return
		}
	}
}

func (m *Membership) followCAOnce(ctx context.Context) error {
	creds := m.credentials()
	if creds == nil {
		return nil
	}
	var bundle *pki.Bundle
	if m.isWorker() {
		info, err := m.fetchCA(ctx)
		if err != nil {
			return err
		}
		if bundle, err = pki.ParseBundle([]byte(info.BundlePEM)); err != nil {
			return err
		}
	} else {
		var err error
		if _, bundle, err = m.caAndTrust(); err != nil {
			return err
		}
	}
	if !bytes.Equal(bundle.PEM(), creds.Trust().PEM()) {
		// Trust the new roots first (old and new talk through the
		// cross-signature), then renew under the active CA.
		if err := creds.SetTrust(bundle); err != nil {
			return err
		}
		m.log.Info("trust bundle changed", "roots", len(bundle.Certificates()))
	}
	if !bundle.IssuedByActive(creds.Leaf()) {
		var err error
		if m.isWorker() {
			err = m.renewThroughManagers(ctx)
		} else {
			err = m.selfSign()
		}
		if err != nil {
			return fmt.Errorf("renew under the new CA: %w", err)
		}
		m.log.Info("node certificate renewed under the new CA", "node", m.nodeID)
	}
	return nil
}

// fetchCA asks a manager what to trust.
func (m *Membership) fetchCA(ctx context.Context) (*api.CAInfo, error) {
	var lastErr error = fmt.Errorf("no manager known")
	for _, id := range m.renewTargets() {
		var info api.CAInfo
		if err := m.peers.Do(ctx, id, peer.Request{Method: http.MethodGet, Path: "/v1/ca"}, &info); err != nil {
			lastErr = err
			continue
		}
		return &info, nil
	}
	return nil, lastErr
}
