package ingress

import (
	"container/list"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per client address with bounded memory: the
// buckets sit in shards of a fixed capacity each, and a new address
// evicts its shard's least recently seen one. A flood of addresses thus
// costs at most the capacity; an evicted client comes back with a full
// bucket (the limiter fails open, never closed, for the clients it
// forgets).
type limiter struct {
	rate   float64 // tokens a second
	burst  float64
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const limiterShards = 16

type limiterShard struct {
	mu  sync.Mutex
	cap int
	m   map[netip.Addr]*list.Element
	lru list.List // of *bucket, most recent at the front
}

type bucket struct {
	addr   netip.Addr
	tokens float64
	last   time.Time
}

// newLimiter makes a limiter of rate requests a second on average, burst
// at once, remembering up to capacity addresses.
func newLimiter(rate float64, burst, capacity int) *limiter {
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rate)))
	}
	l := &limiter{rate: rate, burst: float64(burst), seed: maphash.MakeSeed()}
	per := max(1, capacity/limiterShards)
	for i := range l.shards {
		l.shards[i].cap = per
		l.shards[i].m = make(map[netip.Addr]*list.Element)
	}
	return l
}

// allow takes a token for addr at now; when there is none it returns
// false and how long until there is. An IPv6 client is counted by its
// /64, which a single host commonly has whole.
func (l *limiter) allow(addr netip.Addr, now time.Time) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	addr = addr.Unmap()
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	b := addr.As16()
	sh := &l.shards[maphash.Bytes(l.seed, b[:])%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var bk *bucket
	if e, ok := sh.m[addr]; ok {
		sh.lru.MoveToFront(e)
		bk = e.Value.(*bucket)
		if el := now.Sub(bk.last).Seconds(); el > 0 {
			bk.tokens = math.Min(l.burst, bk.tokens+el*l.rate)
		}
		bk.last = now
	} else {
		if sh.lru.Len() >= sh.cap {
			old := sh.lru.Back()
			sh.lru.Remove(old)
			delete(sh.m, old.Value.(*bucket).addr)
		}
		bk = &bucket{addr: addr, tokens: l.burst, last: now}
		sh.m[addr] = sh.lru.PushFront(bk)
	}
	if bk.tokens >= 1 {
		bk.tokens--
		return true, 0
	}
	wait := time.Duration((1 - bk.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// size is how many addresses the limiter remembers.
func (l *limiter) size() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += l.shards[i].lru.Len()
		l.shards[i].mu.Unlock()
	}
	return n
}
