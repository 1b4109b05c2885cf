package acme

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/warren-edge/warren/daemons/api"
)

// Config sets up a Manager.
type Config struct {
	// Store is the cluster's ingress store, through the local manager.
	Store Store
	// NodeID is this node's ID; every Store call is made for it.
	NodeID string
	// CA is the ACME directory URL. Empty: no ACME; routes with TLS
	// source acme get no certificate (their status says why), those with
	// a secret's are served.
	CA string
	// CARoots are the roots to trust for the CA's HTTPS endpoint (nil:
	// the system's), or CARootsFile a PEM file of them.
	CARoots     *x509.CertPool
	CARootsFile string
	// Email is the ACME account's contact (optional).
	Email string
	// DNSHook is the command that solves dns-01 challenges (see
	// hookSolver); without it, routes asking for dns-01 get no
	// certificate. DNSHookTimeout bounds one run (default 5 minutes).
	DNSHook        string
	DNSHookTimeout time.Duration
	// Logger receives the package's and certmagic's logs (default:
	// discarded).
	Logger *slog.Logger
	// RenewalRatio is the fraction of a certificate's lifetime after
	// which it is renewed (default 2/3; certmagic's RenewalWindowRatio is
	// 1 - RenewalRatio).
	RenewalRatio float64
	// HTTPPort and TLSPort are where this node's ingress takes HTTP and
	// HTTPS, where the CA's http-01 and tls-alpn-01 validations arrive
	// (default 80 and 443). certmagic opens its own listener there only
	// if nothing listens yet.
	HTTPPort, TLSPort int
	// LockTTL is the lease of a lock of the store (default 2 minutes).
	LockTTL time.Duration
	// RenewCheckInterval is how often certificates are checked for
	// renewal (default DefaultRenewCheck).
	RenewCheckInterval time.Duration
	// CleanEvery is how often the cluster's store is cleaned of
	// certificates expired for longer than ExpiredGrace: one node of the
	// cluster cleans per period, under the store's lock (default
	// DefaultCleanEvery and DefaultExpiredGrace). A certificate is left
	// behind when no route names its host any more.
	CleanEvery, ExpiredGrace time.Duration
}

// The defaults of Config.RenewCheckInterval, CleanEvery and ExpiredGrace.
const (
	DefaultRenewCheck   = certmagic.DefaultRenewCheckInterval
	DefaultCleanEvery   = 24 * time.Hour
	DefaultExpiredGrace = 7 * 24 * time.Hour
)

// DefaultRenewalRatio renews a certificate two thirds into its lifetime.
const DefaultRenewalRatio = 2.0 / 3.0

// secretTag marks, in certmagic's cache, a certificate loaded from a
// secret; the tag ends with the secret's name.
const secretTag = "warren-secret:"

// Manager gets, renews and serves the TLS certificates of the ingress
// routes of the cluster.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	storage *Storage
	cache   *certmagic.Cache
	configs map[string]*certmagic.Config // by challenge type
	issuers map[string]*certmagic.ACMEIssuer
	ratio   float64

	ctx       context.Context
	cancel    context.CancelFunc
	kick      chan struct{}
	done      chan struct{}
	cleaning  sync.WaitGroup // cleanLoop
	closeOnce sync.Once

	table atomic.Pointer[table]

	mu         sync.Mutex
	managed    map[string]managedName // ACME names being managed
	strays     map[string]bool        // names no route names, whose renewal was refused (apply takes them out of the cache)
	secrets    map[string]loadedSecret
	lastErr    map[string]string // by host: the last error getting its certificate
	conflicts  map[string]bool   // the last routes' conflicts, logged once
	errorsSeen *prometheus.CounterVec

	// fromStore counts the http-01 challenges answered from the store
	// (a challenge another node, or this one, started).
	fromStore atomic.Int64

	// lookups and challenges bound the store reads http-01 requests
	// cause.
	lookups    windowLimiter
	challenges flights
}

// flights coalesces reads of one key: a call that comes while a read of
// the same key is under way waits for it and shares its result.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done    chan struct{}
	b       []byte
	err     error
	waiters int // calls sharing it (guarded by flights.mu)
}

func (f *flights) do(key string, read func() ([]byte, error)) ([]byte, error) {
	f.mu.Lock()
	if fl, ok := f.m[key]; ok {
		fl.waiters++
		f.mu.Unlock()
		<-fl.done
		return fl.b, fl.err
	}
	if f.m == nil {
		f.m = map[string]*flight{}
	}
	fl := &flight{done: make(chan struct{})}
	f.m[key] = fl
	f.mu.Unlock()
	fl.b, fl.err = read()
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(fl.done)
	return fl.b, fl.err
}

// windowLimiter counts events per key in one-second windows.
type windowLimiter struct {
	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

// allow counts an event of key at now and says whether it is within
// limit for the current second.
func (l *windowLimiter) allow(key string, limit int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second || l.counts == nil {
		l.window, l.counts = now, map[string]int{}
	}
	if l.counts[key] >= limit {
		return false
	}
	l.counts[key]++
	return true
}

type managedName struct {
	challenge string
	cancel    context.CancelFunc
}

type loadedSecret struct {
	sum  [32]byte // of the secret's value
	hash string   // the certificate's in certmagic's cache
}

// New returns a Manager. It manages nothing until SetRoutes. Close it.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.NodeID == "" {
		return nil, errors.New("acme: Config needs Store and NodeID")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RenewalRatio == 0 {
		cfg.RenewalRatio = DefaultRenewalRatio
	}
	if cfg.RenewalRatio <= 0 || cfg.RenewalRatio >= 1 {
		return nil, fmt.Errorf("acme: RenewalRatio %v is not between 0 and 1", cfg.RenewalRatio)
	}
	if cfg.CleanEvery == 0 {
		cfg.CleanEvery = DefaultCleanEvery
	}
	if cfg.ExpiredGrace == 0 {
		cfg.ExpiredGrace = DefaultExpiredGrace
	}
	if cfg.CleanEvery < 0 || cfg.ExpiredGrace < 0 {
		return nil, fmt.Errorf("acme: CleanEvery %v and ExpiredGrace %v must not be negative", cfg.CleanEvery, cfg.ExpiredGrace)
	}
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = 80
	}
	if cfg.TLSPort == 0 {
		cfg.TLSPort = 443
	}
	roots := cfg.CARoots
	if cfg.CARootsFile != "" {
		b, err := os.ReadFile(cfg.CARootsFile)
		if err != nil {
			return nil, fmt.Errorf("acme: CA roots: %w", err)
		}
		if roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme: CA roots: no certificate in %s", cfg.CARootsFile)
		}
	}

	log := cfg.Logger
	zl := zapLogger(log)
	m := &Manager{
		cfg:     cfg,
		log:     log,
		storage: NewStorage(cfg.Store, cfg.NodeID, cfg.LockTTL, log),
		configs: make(map[string]*certmagic.Config),
		issuers: make(map[string]*certmagic.ACMEIssuer),
		ratio:   cfg.RenewalRatio,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		managed: make(map[string]managedName),
		strays:  make(map[string]bool),
		secrets: make(map[string]loadedSecret),
		lastErr: make(map[string]string),
		errorsSeen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_ingress_certificate_errors_total",
			Help: "Failed attempts to get a host's certificate (from the ACME CA, or from its secret).",
		}, []string{"host"}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	empty := table{}
	m.table.Store(&empty)

	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   m.configForCert,
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             zl,
	})
	wanted := map[string]bool{"cert_obtaining": true, "cert_obtained": true, "cert_failed": true}
	for _, chal := range []string{api.ChallengeHTTP01, api.ChallengeTLSALPN01, api.ChallengeDNS01} {
		c := certmagic.New(m.cache, certmagic.Config{
			RenewalWindowRatio: 1 - cfg.RenewalRatio,
			Storage:            m.storage,
			Logger:             zl,
			OnEvent:            m.onEvent,
			ShouldEmitFunc:     func(ev string) bool { return wanted[ev] },
		})
		tmpl := certmagic.ACMEIssuer{
			CA:                      cfg.CA,
			Email:                   cfg.Email,
			Agreed:                  true,
			TrustedRoots:            roots,
			AltHTTPPort:             cfg.HTTPPort,
			AltTLSALPNPort:          cfg.TLSPort,
			DisableHTTPChallenge:    chal != api.ChallengeHTTP01,
			DisableTLSALPNChallenge: chal != api.ChallengeTLSALPN01,
			Logger:                  zl,
		}
		if chal == api.ChallengeDNS01 {
			tmpl.DNS01Solver = hookSolver{cmd: cfg.DNSHook, timeout: cfg.DNSHookTimeout}
		}
		iss := certmagic.NewACMEIssuer(c, tmpl)
		c.Issuers = []certmagic.Issuer{iss}
		m.configs[chal] = c
		m.issuers[chal] = iss
	}
	go m.run()
	if cfg.CA != "" {
		m.cleaning.Go(func() { m.cleanLoop(zl) })
	}
	return m, nil
}

// cleanLoop removes expired certificates from the store: soon after the
// start, then every CleanEvery. certmagic.CleanStorage takes the store's
// lock and skips the work when another node did it within CleanEvery, so
// that the cluster cleans once per period however many ingress nodes
// there are, and a node that restarts often does not clean each time.
func (m *Manager) cleanLoop(zl *zap.Logger) {
	wait := min(m.cfg.CleanEvery, time.Minute)
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = m.cfg.CleanEvery
		err := certmagic.CleanStorage(m.ctx, m.storage, certmagic.CleanStorageOptions{
			Logger: zl, InstanceID: m.storage.holder, Interval: m.cfg.CleanEvery,
			ExpiredCerts: true, ExpiredCertGracePeriod: m.cfg.ExpiredGrace,
		})
		if err != nil && m.ctx.Err() == nil {
			m.log.Warn("acme: cleaning expired certificates out of the store", "err", err, "again_in", wait)
		}
	}
}

// Close stops managing certificates: it cancels issuances under way,
// stops renewals and releases the locks this node holds.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.done
		m.cleaning.Wait()
		m.cache.Stop()
		m.storage.Close()
	})
	return nil
}

// stray tells whether no route names name with a certificate from ACME
// any more, for an attempt certmagic started anyway: a renewal queued
// before the last route went (apply took the certificate out of the
// cache, but the job would put the renewed one back, and it would be
// renewed for ever after), or one of a certificate that a reload from
// the store put back. Such a name is marked for apply, which takes it out
// of the cache; apply alone does, so that this cannot undo a route that
// names it again.
func (m *Manager) stray(name string) bool {
	m.mu.Lock()
	_, ok := m.managed[name]
	if !ok {
		m.strays[name] = true
	}
	m.mu.Unlock()
	if !ok {
		m.applySoon()
	}
	return !ok
}

// applySoon has run apply the route table again, without waiting.
func (m *Manager) applySoon() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// configForCert tells certmagic's cache which config manages a cached
// certificate: the one of its name's challenge type.
func (m *Manager) configForCert(c certmagic.Certificate) (*certmagic.Config, error) {
	chal := api.ChallengeHTTP01
	if len(c.Names) > 0 {
		m.mu.Lock()
		if mn, ok := m.managed[c.Names[0]]; ok {
			chal = mn.challenge
		}
		m.mu.Unlock()
	}
	return m.configs[chal], nil
}

// SetRoutes sets the routes of all services. The hosts of routes with a
// certificate from ACME (TLS nil, or source acme) are managed: obtained
// if the cluster has none yet, then renewed; hosts no route names any
// more are let go. Certificates of routes with source secret are
// (re)loaded from their secrets. It returns at once; the work is done in
// the background, and Status tells how it stands.
func (m *Manager) SetRoutes(routes []api.IngressRoute) {
	t, conflicts := planRoutes(routes, m.cfg.CA != "", m.cfg.DNSHook != "")
	// Log what is new: SetRoutes comes with every change of the table.
	m.mu.Lock()
	seen := make(map[string]bool, len(conflicts))
	for _, c := range conflicts {
		seen[c] = true
		if !m.conflicts[c] {
			m.log.Error("acme: routes of one host disagree on its certificate", "conflict", c)
		}
	}
	m.conflicts = seen
	m.mu.Unlock()
	old := *m.table.Load()
	for h, p := range t {
		if p.Err != "" && old[h].Err != p.Err {
			m.log.Error("acme: host gets no certificate", "host", h, "err", p.Err)
		}
	}
	m.table.Store(&t)
	m.applySoon()
}

// run applies the latest route table, one change at a time.
func (m *Manager) run() {
	defer close(m.done)
	for {
		select {
		case <-m.ctx.Done():
			m.mu.Lock()
			for _, mn := range m.managed {
				mn.cancel()
			}
			m.mu.Unlock()
			return
		case <-m.kick:
		}
		m.apply(*m.table.Load())
	}
}

// apply makes the managed names and loaded secrets those of t.
func (m *Manager) apply(t table) {
	want := t.acmeNames()
	type job struct {
		ctx       context.Context
		name, cfg string
	}
	var jobs []job
	var gone []certmagic.SubjectIssuer
	m.mu.Lock()
	for name, chal := range want {
		cur, ok := m.managed[name]
		if ok && cur.challenge == chal {
			continue
		}
		if ok {
			cur.cancel()
		}
		ctx, cancel := context.WithCancel(m.ctx)
		m.managed[name] = managedName{challenge: chal, cancel: cancel}
		jobs = append(jobs, job{ctx, name, chal})
	}
	for name, cur := range m.managed {
		if _, ok := want[name]; !ok {
			cur.cancel()
			delete(m.managed, name)
			gone = append(gone, certmagic.SubjectIssuer{Subject: name})
		}
	}
	released := len(gone)
	for name := range m.strays {
		if _, ok := want[name]; !ok {
			gone = append(gone, certmagic.SubjectIssuer{Subject: name})
		}
	}
	clear(m.strays)
	m.mu.Unlock()
	for _, g := range gone[:released] {
		m.log.Info("acme: no route names this host any more; its certificate is no longer renewed here", "host", g.Subject)
	}
	// Out of the cache before any ManageAsync below caches a name again.
	if len(gone) > 0 {
		m.cache.RemoveManaged(gone)
	}
	for _, j := range jobs {
		m.log.Info("acme: managing certificate", "host", j.name, "challenge", j.cfg)
		if err := m.configs[j.cfg].ManageAsync(j.ctx, []string{j.name}); err != nil {
			m.noteError(j.name, err, true)
		}
	}
	m.loadSecrets(t)
}

// loadSecrets (re)loads the certificates of t's secret routes into the
// cache and drops those no route uses.
func (m *Manager) loadSecrets(t table) {
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	hostsOf := make(map[string][]string)
	for h, p := range t {
		if p.Source == api.TLSSecret && p.Err == "" {
			hostsOf[p.Secret] = append(hostsOf[p.Secret], h)
		}
	}
	m.mu.Lock()
	old := m.secrets
	m.mu.Unlock()
	next := make(map[string]loadedSecret)
	for name, hosts := range hostsOf {
		prev, had := old[name]
		b, err := m.cfg.Store.IngressSecret(ctx, m.cfg.NodeID, name)
		if err != nil {
			if had {
				next[name] = prev // keep serving what we had
			}
			m.noteHosts(hosts, fmt.Errorf("acme: secret %s: %w", name, err))
			continue
		}
		sum := sha256.Sum256(b)
		if had && prev.sum == sum {
			next[name] = prev
			continue
		}
		certPEM, keyPEM, err := splitPEM(b)
		var hash string
		if err == nil {
			hash, err = m.configs[api.ChallengeHTTP01].CacheUnmanagedCertificatePEMBytes(ctx, certPEM, keyPEM, []string{secretTag + name})
		}
		if err != nil {
			if had {
				next[name] = prev
			}
			m.noteHosts(hosts, fmt.Errorf("acme: secret %s: %w", name, err))
			continue
		}
		next[name] = loadedSecret{sum: sum, hash: hash}
		m.log.Info("acme: certificate loaded from secret", "secret", name, "hosts", hosts)
		m.clearHosts(hosts)
	}
	live := make(map[string]bool)
	for _, s := range next {
		live[s.hash] = true
	}
	var drop []string
	for _, s := range old {
		if !live[s.hash] {
			drop = append(drop, s.hash)
		}
	}
	m.mu.Lock()
	m.secrets = next
	m.mu.Unlock()
	if len(drop) > 0 {
		m.cache.Remove(drop)
	}
}

// splitPEM separates a secret's PEM certificate chain from its private
// key.
func splitPEM(b []byte) (certPEM, keyPEM []byte, err error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch {
		case blk.Type == "CERTIFICATE":
			certPEM = append(certPEM, pem.EncodeToMemory(blk)...)
		case strings.HasSuffix(blk.Type, "PRIVATE KEY") && keyPEM == nil:
			keyPEM = pem.EncodeToMemory(blk)
		}
	}
	if certPEM == nil || keyPEM == nil {
		return nil, nil, errors.New("want a PEM certificate chain and its private key")
	}
	return certPEM, keyPEM, nil
}

// TLSConfig is the ingress's TLS configuration: certificates of routed
// hosts only, and answers to tls-alpn-01 challenges. A handshake for a
// name no route names fails and asks the CA nothing.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: m.getCertificate,
		NextProtos:     []string{"h2", "http/1.1", acmez.ACMETLS1Protocol},
		MinVersion:     tls.VersionTLS12,
	}
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeHost(hello.ServerName)
	if name == "" {
		return nil, errors.New("acme: no server name (SNI) in the TLS handshake")
	}
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		// A CA validating tls-alpn-01: certmagic answers from this
		// process's challenges, then from the store (a challenge another
		// node started). Not gated on the routes, which reach the nodes
		// at different times; nothing is asked of the CA here.
		return m.configs[api.ChallengeTLSALPN01].GetCertificate(hello)
	}
	p, ok := m.table.Load().lookup(name)
	if !ok {
		return nil, fmt.Errorf("acme: no route for %q", name)
	}
	c := m.certFor(p, name, hello)
	if c == nil {
		return nil, fmt.Errorf("acme: no certificate for %q yet", name)
	}
	return &c.Certificate, nil
}

// certFor is the cached certificate that serves name under plan p, or
// nil. hello may be nil.
func (m *Manager) certFor(p hostPlan, name string, hello *tls.ClientHelloInfo) *certmagic.Certificate {
	if p.Err != "" {
		return nil
	}
	all := m.cache.AllMatchingCertificates(name)
	var choices []certmagic.Certificate
	switch p.Source {
	case api.TLSSecret:
		m.mu.Lock()
		s, ok := m.secrets[p.Secret]
		m.mu.Unlock()
		if !ok {
			return nil
		}
		for _, c := range all {
			if c.Hash() == s.hash {
				return &c
			}
		}
		return nil
	case api.TLSAcme:
		for _, c := range all {
			if !isSecretCert(c) {
				choices = append(choices, c)
			}
		}
	}
	if len(choices) == 0 {
		return nil
	}
	if hello == nil {
		hello = &tls.ClientHelloInfo{ServerName: name}
	}
	c, err := certmagic.DefaultCertificateSelector(hello, choices)
	if err != nil {
		return nil
	}
	return &c
}

func isSecretCert(c certmagic.Certificate) bool {
	for _, t := range c.Tags {
		if strings.HasPrefix(t, secretTag) {
			return true
		}
	}
	return false
}

// HasCert says whether a certificate is served for host (a route's host,
// or a name a wildcard route covers), unexpired.
func (m *Manager) HasCert(host string) bool {
	host = normalizeHost(host)
	p, ok := m.table.Load().lookup(host)
	if !ok {
		return false
	}
	c := m.certFor(p, host, nil)
	return c != nil && c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter)
}

// HTTPChallengeHandler answers the CA's http-01 requests
// (/.well-known/acme-challenge/TOKEN) for a challenge any ingress node
// started: from the shared store first (where certmagic's distributed
// solver puts every challenge before the CA is told to validate), then
// from this process's own challenges. Anything else gets 404. Mount it at
// /.well-known/acme-challenge/ on the HTTP listener, before any redirect
// to HTTPS.
func (m *Manager) HTTPChallengeHandler() http.Handler {
	iss := m.issuers[api.ChallengeHTTP01]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !certmagic.LooksLikeHTTPChallenge(r) {
			http.NotFound(w, r)
			return
		}
		if m.answerFromStore(w, r) {
			return
		}
		if iss.HandleHTTPChallenge(w, r) {
			return
		}
		http.NotFound(w, r)
	})
}

// answerFromStore answers an http-01 request with the challenge that
// certmagic's distributed solver stored for the request's host: the
// layout certmagic's own distributed solving reads
// (acme/ISSUER/challenge_tokens/HOST.json).
func (m *Manager) answerFromStore(w http.ResponseWriter, r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalizeHost(host)
	// Each lookup is a read on the managers, so a client must not cause
	// one per request. The lookups of one host are coalesced: a request
	// that comes while one is under way shares its answer (a read takes a
	// millisecond or so; the CA asks only after the challenge is stored,
	// so it never shares a read that began before). Names this node has
	// no http-01 route for (one whose route has not reached this node
	// yet, or a made-up name) share 10 lookups a second besides. A miss is
	// not remembered: that would let anyone who asks for a host's
	// challenge just before the CA does hide the real one.
	p, ok := m.table.Load().lookup(host)
	routed := ok && p.Source == api.TLSAcme && p.Challenge == api.ChallengeHTTP01
	if !routed && !m.lookups.allow("", 10, time.Now()) {
		return false
	}
	key := path.Join("acme", certmagic.StorageKeys.Safe(m.issuers[api.ChallengeHTTP01].IssuerKey()),
		"challenge_tokens", certmagic.StorageKeys.Safe(host)+".json")
	b, err := m.challenges.do(key, func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
		defer cancel()
		return m.storage.Load(ctx, key)
	})
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("acme: looking up an http-01 challenge in the store", "host", host, "err", err)
		}
		return false
	}
	var chal acme.Challenge
	if err := json.Unmarshal(b, &chal); err != nil {
		m.log.Warn("acme: a stored http-01 challenge does not decode", "host", host, "err", err)
		return false
	}
	if chal.Type != acme.ChallengeTypeHTTP01 {
		return false
	}
	if !certmagic.SolveHTTPChallenge(zap.NewNop(), w, r, chal) {
		return false
	}
	m.fromStore.Add(1)
	m.log.Info("acme: answered an http-01 challenge from the store", "host", host, "remote", r.RemoteAddr)
	return true
}

// onEvent follows certmagic's events for the status, the error metrics
// and the cluster-wide hold on a failing name. An error from it on
// cert_obtaining stops that attempt before anything is sent to the CA.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	if name == "" {
		return nil
	}
	switch event {
	case "cert_obtaining":
		if m.stray(name) {
			m.log.Info("acme: not renewing a certificate no route names any more", "host", name)
			return fmt.Errorf("acme: no route names %s any more; not asking the CA for it", name)
		}
		h, err := m.loadHold(ctx, name)
		if err != nil || !time.Now().Before(h.Until) {
			return nil
		}
		err = fmt.Errorf("acme: %s: not asking the CA before %s (%d failed attempts; last: %s)",
			name, h.Until.UTC().Format(time.RFC3339), h.Failures, h.Error)
		m.noteError(name, err, false)
		m.log.Info("acme: holding back an attempt for a failing name", "host", name, "until", h.Until, "failures", h.Failures)
		return err
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("certificate not obtained")
		}
		m.noteError(name, err, true)
		prev, _ := m.loadHold(ctx, name)
		h := nextHold(prev, err, time.Now())
		if b, jerr := json.Marshal(h); jerr == nil {
			if serr := m.storage.Store(context.WithoutCancel(ctx), holdKey(name), b); serr != nil {
				m.log.Warn("acme: recording a failure in the store", "host", name, "err", serr)
			}
		}
		m.log.Error("acme: could not get a certificate", "host", name, "err", err,
			"failures", h.Failures, "next_attempt_after", h.Until, "rate_limited", h.RateLimited)
	case "cert_obtained":
		m.clearHosts([]string{name})
		if err := m.storage.Delete(context.WithoutCancel(ctx), holdKey(name)); err != nil {
			m.log.Warn("acme: clearing a failure record", "host", name, "err", err)
		}
		m.log.Info("acme: certificate obtained", "host", name, "renewal", data["renewal"] == true)
	}
	return nil
}

func (m *Manager) loadHold(ctx context.Context, name string) (hold, error) {
	var h hold
	b, err := m.storage.Load(ctx, holdKey(name))
	if err != nil {
		return h, err
	}
	err = json.Unmarshal(b, &h)
	return h, err
}

// noteError records err as host's last error; count says it is a failed
// attempt (the metric counts those).
func (m *Manager) noteError(host string, err error, count bool) {
	m.mu.Lock()
	m.lastErr[host] = err.Error()
	m.mu.Unlock()
	if count {
		m.errorsSeen.WithLabelValues(host).Inc()
	}
}

func (m *Manager) noteHosts(hosts []string, err error) {
	m.log.Error("acme: could not load a certificate", "hosts", hosts, "err", err)
	for _, h := range hosts {
		m.noteError(h, err, true)
	}
}

func (m *Manager) clearHosts(hosts []string) {
	m.mu.Lock()
	for _, h := range hosts {
		delete(m.lastErr, h)
	}
	m.mu.Unlock()
}
