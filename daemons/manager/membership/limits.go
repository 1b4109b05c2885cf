package membership

import (
	"net"
	"sync"
	"time"
)

// connLimiter bounds open connections, in all and per remote address.
type connLimiter struct {
	mu      sync.Mutex
	max     int
	perHost int
	open    int
	byHost  map[string]int
}

func newConnLimiter(max, perHost int) *connLimiter {
	return &connLimiter{max: max, perHost: perHost, byHost: map[string]int{}}
}

// admit counts c in, or says there is no room for it.
func (l *connLimiter) admit(c net.Conn) (net.Conn, bool) {
	host := hostOf(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max || l.byHost[host] >= l.perHost {
		return nil, false
	}
	l.open++
	l.byHost[host]++
	return &limitedConn{Conn: c, release: func() { l.release(host) }}, true
}

func (l *connLimiter) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byHost[host]--; l.byHost[host] <= 0 {
		delete(l.byHost, host)
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn gives its place back when closed (once).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close gives the place back first, so that the peer, once it sees the
// connection closed, may open another.
func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// Joins are bounded per source address: a token holder (or a thief of a
// token) cannot register nodes without limit and use up the cluster's
// pool of node subnets; a fleet booting together still joins at once.
const (
	joinBurst = 20
	joinEvery = 3 * time.Second // one more join per address this often
)

// rateLimiter is a token bucket per key.
type rateLimiter struct {
	mu      sync.Mutex
	burst   float64
	every   time.Duration
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(burst int, every time.Duration) *rateLimiter {
	return &rateLimiter{burst: float64(burst), every: every, buckets: map[string]*bucket{}}
}

// allow takes one token of key's bucket at now, or says how long until
// one is there.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.every))
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		if len(l.buckets) > 4096 {
			l.prune(now)
		}
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.every))
}

// prune forgets the keys whose buckets are full again.
func (l *rateLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+float64(now.Sub(b.at))/float64(l.every) >= l.burst {
			delete(l.buckets, k)
		}
	}
}
