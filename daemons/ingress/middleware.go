package ingress

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warren-edge/warren/daemons/api"
)

// ipLists are a route's allow and deny CIDR lists.
type ipLists struct {
	allow, deny []netip.Prefix
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("CIDR %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// permits says whether a client may pass: not in deny, and in allow
// when allow is set.
func (l ipLists) permits(client netip.Addr) bool {
	client = client.Unmap()
	if inPrefixes(l.deny, client) {
		return false
	}
	return len(l.allow) == 0 || inPrefixes(l.allow, client)
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// users are a basic-auth secret's "user:bcrypt-hash" lines, loaded once
// per table and route. Checked passwords are remembered (as a SHA-256
// of user and password) so a client does not cost a bcrypt run on
// every request.
type users struct {
	load func() ([]byte, error)

	mu       sync.Mutex
	hashes   map[string][]byte
	err      error
	loadedAt time.Time
	ok       map[[32]byte]bool
}

// dummyHash keeps the time of a check of an unknown user like that of a
// known one.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("warren-ingress"), bcrypt.MinCost)

const usersRetry = 5 * time.Second // a failed load is tried again after it

func parseUsers(b []byte) (map[string][]byte, error) {
	m := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, h, ok := strings.Cut(line, ":")
		if !ok || u == "" || !strings.HasPrefix(h, "$2") {
			return nil, fmt.Errorf("line %d: want user:bcrypt-hash", n)
		}
		m[u] = []byte(h)
	}
	return m, sc.Err()
}

// check says whether the request carries a known user and its password;
// err is set when the users could not be loaded.
func (u *users) check(r *http.Request, now time.Time) (bool, error) {
	u.mu.Lock()
	if u.hashes == nil && (u.err == nil || now.Sub(u.loadedAt) > usersRetry) {
		b, err := u.load()
		u.loadedAt = now
		if err == nil {
			u.hashes, err = parseUsers(b)
		}
		u.err = err
	}
	hashes, err := u.hashes, u.err
	u.mu.Unlock()
	if hashes == nil {
		return false, err
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		return false, nil
	}
	sum := sha256.Sum256([]byte(name + "\x00" + pass))
	u.mu.Lock()
	known := u.ok[sum]
	u.mu.Unlock()
	if known {
		return true, nil
	}
	h, found := hashes[name]
	if !found {
		h = dummyHash
	}
	if bcrypt.CompareHashAndPassword(h, []byte(pass)) != nil || !found {
		return false, nil
	}
	u.mu.Lock()
	if len(u.ok) >= 1024 {
		clear(u.ok)
	}
	u.ok[sum] = true
	u.mu.Unlock()
	return true, nil
}

// applyHeaders changes h by the rules: Remove, then Set, then Add.
func applyHeaders(h http.Header, rules *api.HeaderRules) {
	if rules == nil {
		return
	}
	for _, k := range rules.Remove {
		h.Del(k)
	}
	for k, v := range rules.Set {
		h.Set(k, v)
	}
	for k, v := range rules.Add {
		h.Add(k, v)
	}
}

// rewritePath changes u's path for the route: StripPrefix takes the
// route's path off, Rewrite puts another prefix in its place. The
// escaped form (RawPath) follows, keeping escapes of the rest of the
// path as the client sent them.
func rewritePath(u *url.URL, spec *api.IngressRoute) {
	if !spec.StripPrefix && spec.Rewrite == "" {
		return
	}
	prefix := spec.Path
	to := ""
	if spec.Rewrite != "" {
		to = strings.TrimRight(spec.Rewrite, "/")
		if !strings.HasPrefix(to, "/") {
			to = "/" + to
		}
	}
	if prefix == "/" {
		prefix = ""
	}
	rest, ok := strings.CutPrefix(u.Path, prefix)
	if !ok {
		return
	}
	newPath := joinPath(to, rest)
	if u.RawPath != "" {
		rawRest, ok := cutEscapedPrefix(u.RawPath, prefix)
		if ok {
			u.RawPath = joinPath((&url.URL{Path: to}).EscapedPath(), rawRest)
		} else {
			u.RawPath = ""
		}
	}
	u.Path = newPath
	if u.RawPath != "" {
		// keep RawPath only while it is a valid encoding of Path
		if p, err := url.PathUnescape(u.RawPath); err != nil || p != u.Path {
			u.RawPath = ""
		}
	}
}

// cutEscapedPrefix cuts the escaped form of prefix off raw: raw's first
// segments must unescape to prefix.
func cutEscapedPrefix(raw, prefix string) (string, bool) {
	if prefix == "" {
		return raw, true
	}
	// walk raw's segments until their unescaped length covers prefix
	i := 0
	for i < len(raw) {
		j := strings.IndexByte(raw[i+1:], '/')
		end := len(raw)
		if j >= 0 {
			end = i + 1 + j
		}
		p, err := url.PathUnescape(raw[:end])
		if err != nil {
			return "", false
		}
		if p == prefix {
			return raw[end:], true
		}
		if len(p) > len(prefix) {
			return "", false
		}
		i = end
	}
	return "", false
}

func joinPath(a, b string) string {
	switch {
	case a == "" && b == "":
		return "/"
	case a == "":
		if !strings.HasPrefix(b, "/") {
			return "/" + b
		}
		return b
	case b == "":
		return a
	}
	return a + b
}
