package membership

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// A node's TLS files live in DATA/tls: its key (made on the node, never
// sent), its certificate chain and the cluster's trust bundle. The key and
// certificate are the node's identity on the node port.
const (
	tlsDir     = "tls"
	keyFile    = "node.key"
	certFile   = "node.crt"
	bundleFile = "ca.crt"
)

// nodeCertTTL is how long a node certificate lasts (tests shorten it).
var nodeCertTTL = 90 * 24 * time.Hour

// renewRetryMax bounds the wait between a worker's attempts to renew
// (from a second, doubling): a node cut off past its certificate's
// expiry renews within it of being back. (Tests shorten it.)
var renewRetryMax = time.Minute

func (m *Membership) tlsPath(name string) string { return filepath.Join(m.cfg.DataDir, tlsDir, name) }

// loadCredentials reads the node's TLS files, if it has them.
func (m *Membership) loadCredentials() (*pki.Credentials, error) {
	certPEM, err := os.ReadFile(m.tlsPath(certFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(m.tlsPath(keyFile))
	if err != nil {
		return nil, fmt.Errorf("manager: %s has a certificate but no key: %w", tlsDir, err)
	}
	bundlePEM, err := os.ReadFile(m.tlsPath(bundleFile))
	if err != nil {
		return nil, fmt.Errorf("manager: %s has no trust bundle: %w", tlsDir, err)
	}
	bundle, err := pki.ParseBundle(bundlePEM)
	if err != nil {
		return nil, fmt.Errorf("manager: %s: %w", m.tlsPath(bundleFile), err)
	}
	creds, err := pki.NewCredentials(certPEM, keyPEM, bundle)
	if err != nil {
		return nil, fmt.Errorf("manager: %s: %w (rejoin the cluster with a new token)", m.tlsPath(certFile), err)
	}
	return creds, nil
}

// saveCredentials writes the node's TLS files and swaps them in.
func (m *Membership) saveCredentials(certPEM, keyPEM, bundlePEM []byte) error {
	if err := saveCredentialFiles(m.cfg.DataDir, certPEM, keyPEM, bundlePEM); err != nil {
		return err
	}
	bundle, err := pki.ParseBundle(bundlePEM)
	if err != nil {
		return err
	}
	m.credMu.Lock()
	defer m.credMu.Unlock()
	if m.creds == nil {
		c, err := pki.NewCredentials(certPEM, keyPEM, bundle)
		if err != nil {
			return err
		}
		m.creds = c
		return nil
	}
	if err := m.creds.Update(certPEM, keyPEM, bundle); err != nil {
		return err
	}
	if p, ok := m.peers.Dialer.(*tlsPeers); ok {
		p.reset()
	}
	return nil
}

// saveCredentialFiles writes a node's TLS files in its data dir.
func saveCredentialFiles(dataDir string, certPEM, keyPEM, bundlePEM []byte) error {
	if err := os.MkdirAll(filepath.Join(dataDir, tlsDir), 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{keyFile, keyPEM}, {certFile, certPEM}, {bundleFile, bundlePEM}} {
		if err := store.WriteFileAtomic(filepath.Join(dataDir, tlsDir, f.name), f.b); err != nil {
			return fmt.Errorf("manager: save %s: %w", f.name, err)
		}
	}
	return nil
}

// credentials returns the node's credentials (nil before it has any).
func (m *Membership) credentials() *pki.Credentials {
	m.credMu.Lock()
	defer m.credMu.Unlock()
	return m.creds
}

// clusterCA reads the active CA from the managers' state.
func (m *Membership) clusterCA() (*pki.CA, error) {
	ca, _, err := m.caAndTrust()
	return ca, err
}

// caAndTrust reads the active CA and the roots every node must trust.
func (m *Membership) caAndTrust() (*pki.CA, *pki.Bundle, error) {
	var rec *store.CA
	m.store.View(func(v *store.View) error { rec = v.CA(); return nil })
	if rec == nil {
		return nil, nil, fmt.Errorf("the cluster has no CA yet")
	}
	ca, err := m.loadCA(rec)
	if err != nil {
		return nil, nil, err
	}
	var bundle *pki.Bundle
	if rec.BundlePEM != "" {
		bundle, err = pki.ParseBundle([]byte(rec.BundlePEM))
	} else {
		bundle, err = pki.NewBundle(ca.Certificate())
	}
	return ca, bundle, err
}

// selfSign gives a manager a certificate from the CA it holds: at the
// cluster's start, and when its certificate is due for renewal.
func (m *Membership) selfSign() error {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	ca, err := m.clusterCA()
	if err != nil {
		return err
	}
	csr, keyPEM, err := m.nodeCSR()
	if err != nil {
		return err
	}
	_, bundle, err := m.caAndTrust()
	if err != nil {
		return err
	}
	certPEM, err := ca.SignNode(csr, pki.Identity{ClusterID: ca.ClusterID(), NodeID: m.nodeID, Role: pki.RoleManager}, nodeCertTTL, time.Now())
	if err != nil {
		return err
	}
	return m.saveCredentials(certPEM, keyPEM, bundle.PEM())
}

// nodeCSR is a certificate request for the node's key, and that key.
func (m *Membership) nodeCSR() (csr, keyPEM []byte, err error) {
	k, keyPEM, err := m.nodeKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err = pki.NewCSR(k, m.nodeID)
	if err != nil {
		return nil, nil, err
	}
	return csr, keyPEM, nil
}

// nodeKey reads the node's key, or makes one: it never leaves the node.
func (m *Membership) nodeKey() (crypto.Signer, []byte, error) {
	if b, err := os.ReadFile(m.tlsPath(keyFile)); err == nil {
		k, err := pki.ParseKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("manager: %s: %w", m.tlsPath(keyFile), err)
		}
		return k, b, nil
	}
	k, b, err := pki.NewKey()
	if err != nil {
		return nil, nil, err
	}
	return k, b, nil
}

// keepCredentials gives a manager its certificate once the cluster has a
// CA, and renews it when due.
func (m *Membership) keepCredentials(ctx context.Context) {
	for {
		c := m.credentials()
		if c == nil || c.RenewalDue(time.Now()) {
			if err := m.selfSign(); err != nil {
				m.log.Debug("node certificate not made yet", "err", err)
			} else if c == nil {
				m.log.Info("node certificate made", "node", m.nodeID)
			} else {
				m.log.Info("node certificate renewed", "node", m.nodeID)
			}
		}
		wait := m.untilRenewal()
		if m.credentials() == nil {
			wait = 200 * time.Millisecond
		}
		if core.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// keepWorkerCredentials renews a worker's certificate through a manager
// when it is due (a worker holds no CA), and again and again while no
// manager does. Nothing else on the node needs the certificate valid: a
// worker cut off past its expiry keeps serving its replica to its agent
// and dns on the local sockets, and renews when it is back; whether it
// still may (the grace) is the managers' judgement, with their clocks,
// not this node's.
func (m *Membership) keepWorkerCredentials(ctx context.Context) {
	retry := time.Second
	for {
		if c := m.credentials(); c != nil && c.RenewalDue(time.Now()) {
			if err := m.renewThroughManagers(ctx); err != nil {
				m.renewFailed(c, err)
				if core.Sleep(ctx, retry) != nil {
					return
				}
				retry = min(2*retry, renewRetryMax)
				continue
			}
			retry = time.Second
			m.log.Info("node certificate renewed", "node", m.nodeID)
		}
		if core.Sleep(ctx, m.untilRenewal()) != nil {
			return
		}
	}
}

// renewFailed logs why a renewal failed: a refusal (this node's
// certificate expired beyond the grace, say) says what to do.
func (m *Membership) renewFailed(c *pki.Credentials, err error) {
	if api.IsCode(err, api.CodeForbidden) {
		m.log.Error("the managers refuse to renew this node's certificate", "node", m.nodeID, "expires", c.Leaf().NotAfter, "err", err)
		return
	}
	m.log.Warn("renew this node's certificate", "expires", c.Leaf().NotAfter, "err", err)
}

// untilRenewal is how long to wait before looking at the certificate
// again: until it is due, at most an hour.
func (m *Membership) untilRenewal() time.Duration {
	c := m.credentials()
	if c == nil {
		return time.Second
	}
	return min(max(time.Until(pki.RenewAt(c.Leaf())), time.Second), time.Hour)
}

func (m *Membership) renewThroughManagers(ctx context.Context) error {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	res, keyPEM, err := m.renewFromManagers(ctx)
	if err != nil {
		return err
	}
	return m.saveCredentials([]byte(res.CertPEM), keyPEM, []byte(res.BundlePEM))
}

// renewFromManagers asks the managers, in turn, to sign a request for the
// node's key; it returns the first answer and the key.
func (m *Membership) renewFromManagers(ctx context.Context) (*api.RenewResponse, []byte, error) {
	csr, keyPEM, err := m.nodeCSR()
	if err != nil {
		return nil, nil, err
	}
	var lastErr error = errors.New("no manager known")
	for _, id := range m.renewTargets() {
		res, err := m.renew(ctx, id, csr)
		if err != nil {
			lastErr = err
			continue
		}
		return res, keyPEM, nil
	}
	return nil, nil, lastErr
}
