package ingress

import (
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// TableOptions are the inputs of BuildTable besides the services and
// tasks.
type TableOptions struct {
	// NodeID is the node this warren-ingress runs on.
	NodeID string
	// Unreachable are nodes whose tasks get no traffic (node ID → true).
	Unreachable map[string]bool
	// LocalOnly keeps only the tasks on NodeID.
	LocalOnly bool
	// Index is the store index the services and tasks were read at.
	Index uint64
}

// Backend is one task a route balances over.
type Backend struct {
	Addr   string // IP:port
	TaskID string
	NodeID string
}

// Route is one route of the table: a service's api.IngressRoute with
// its host and path normalized and the backends it balances over.
type Route struct {
	Service   string
	ServiceID string
	// Spec is the route as the service declares it, with Host in lower
	// case without a trailing dot and Path defaulted to "/" without a
	// trailing slash.
	Spec     api.IngressRoute
	Backends []Backend

	key  string
	wild bool
}

// Key names the route in metrics and logs: its host followed by its
// path ("shop.example/api", "*.shop.example/").
func (r *Route) Key() string { return r.key }

// Status is the route as `warrenctl ingress ls` shows it, without its
// certificate (the certificate manager fills Cert).
func (r *Route) Status() api.IngressRouteStatus {
	st := api.IngressRouteStatus{Service: r.Service, ServiceID: r.ServiceID, Route: r.Spec}
	st.Backends = make([]api.IngressBackend, len(r.Backends))
	for i, b := range r.Backends {
		st.Backends[i] = api.IngressBackend{TaskID: b.TaskID, NodeID: b.NodeID, Addr: b.Addr, Serving: true}
	}
	return st
}

// Table is the immutable routing table: build a new one on every
// change and swap it in (Proxy.SetTable).
type Table struct {
	index  uint64
	exact  map[string][]*Route // host → its routes, longest path first
	wild   map[string][]*Route // "example.com" for "*.example.com" → routes
	routes []*Route            // by host, then path
	hosts  []string
}

// BuildTable makes the routing table of the services' ingress routes.
// Backends of a route are its service's tasks that are Serving, at
// their running address and the route's port; tasks on unreachable
// nodes are left out, and with LocalOnly the tasks of other nodes too.
// When two services claim the same host and path (the API refuses it),
// the service with the smaller ID keeps it.
func BuildTable(o TableOptions, services []*api.Service, tasks []*api.Task) *Table {
	byService := make(map[string][]*api.Task)
	for _, t := range tasks {
		if t == nil || !t.Serving() || o.Unreachable[t.NodeID] {
			continue
		}
		if o.LocalOnly && t.NodeID != o.NodeID {
			continue
		}
		byService[t.ServiceID] = append(byService[t.ServiceID], t)
	}
	svcs := slices.Clone(services)
	svcs = slices.DeleteFunc(svcs, func(s *api.Service) bool { return s == nil })
	sort.SliceStable(svcs, func(i, j int) bool { return svcs[i].ID < svcs[j].ID })

	t := &Table{index: o.Index, exact: map[string][]*Route{}, wild: map[string][]*Route{}}
	seen := map[string]bool{}
	hosts := map[string]bool{}
	for _, s := range svcs {
		for _, spec := range s.Spec.Ingress {
			// Specs are stored normalized (api.NormalizeSpec); Key is
			// that normalization, for one that was not.
			k := spec.Key()
			host := k.Host
			if host == "" {
				continue
			}
			spec.Host, spec.Path = k.Host, k.Path
			key := host + spec.Path
			if seen[key] {
				continue
			}
			seen[key] = true
			r := &Route{Service: s.Spec.Name, ServiceID: s.ID, Spec: spec, key: key}
			for _, task := range byService[s.ID] {
				addr := netip.AddrPortFrom(task.RunningAddr(), spec.Port)
				r.Backends = append(r.Backends, Backend{Addr: addr.String(), TaskID: task.ID, NodeID: task.NodeID})
			}
			sort.Slice(r.Backends, func(i, j int) bool {
				a, b := r.Backends[i], r.Backends[j]
				if a.Addr != b.Addr {
					return a.Addr < b.Addr
				}
				return a.TaskID < b.TaskID
			})
			if suffix, ok := strings.CutPrefix(host, "*."); ok {
				r.wild = true
				t.wild[suffix] = append(t.wild[suffix], r)
			} else {
				t.exact[host] = append(t.exact[host], r)
			}
			hosts[host] = true
			t.routes = append(t.routes, r)
		}
	}
	for _, m := range []map[string][]*Route{t.exact, t.wild} {
		for _, rs := range m {
			sort.Slice(rs, func(i, j int) bool { return len(rs[i].Spec.Path) > len(rs[j].Spec.Path) })
		}
	}
	sort.Slice(t.routes, func(i, j int) bool {
		a, b := t.routes[i], t.routes[j]
		if a.Spec.Host != b.Spec.Host {
			return a.Spec.Host < b.Spec.Host
		}
		return a.Spec.Path < b.Spec.Path
	})
	for h := range hosts {
		t.hosts = append(t.hosts, h)
	}
	sort.Strings(t.hosts)
	return t
}

// Index is the store index the table was built at.
func (t *Table) Index() uint64 { return t.index }

// Routes are the table's routes, by host then path.
func (t *Table) Routes() []*Route { return slices.Clone(t.routes) }

// Hosts are the hosts the routes name, sorted, each once (wildcards as
// "*.example.com").
func (t *Table) Hosts() []string { return slices.Clone(t.hosts) }

// Match finds the route of a request: among the routes whose host and
// path prefix match, one with an exact host before one with a wildcard
// host, then the longest path prefix. The host is matched without case,
// port or trailing dot; the path prefix on whole segments. The path
// should be clean (CleanPath).
func (t *Table) Match(host, urlPath string) (*Route, bool) {
	host = NormalizeHost(host)
	if host == "" {
		return nil, false
	}
	if r := matchPath(t.exact[host], urlPath); r != nil {
		return r, true
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if r := matchPath(t.wild[host[i+1:]], urlPath); r != nil {
			return r, true
		}
	}
	return nil, false
}

// HasHost says whether any route names the host (exactly or by a
// wildcard), whatever the path.
func (t *Table) HasHost(host string) bool {
	host = NormalizeHost(host)
	if len(t.exact[host]) > 0 {
		return true
	}
	i := strings.IndexByte(host, '.')
	return i > 0 && len(t.wild[host[i+1:]]) > 0
}

func matchPath(routes []*Route, urlPath string) *Route {
	for _, r := range routes { // longest first
		if PathHasPrefix(urlPath, r.Spec.Path) {
			return r
		}
	}
	return nil
}

// PathHasPrefix says whether prefix (no trailing slash but "/") is a
// prefix of p on whole segments: "/api" is one of "/api", "/api/" and
// "/api/x", not of "/apix".
func PathHasPrefix(p, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(p, "/")
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// NormalizeHost returns a Host header's name in lower case, without its
// port and trailing dot; "" when nothing is left.
func NormalizeHost(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}

// CleanPath is the path a request is routed by: p with dot segments and
// doubled slashes resolved, rooted, keeping a trailing slash. Routing on
// it keeps "/public/../admin" from slipping past a route of "/admin".
func CleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
