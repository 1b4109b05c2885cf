package ingress

import (
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/warren-edge/warren/daemons/api"
)

func svc(id, name string, routes ...api.IngressRoute) *api.Service {
	s := &api.Service{Spec: api.ServiceSpec{Name: name, Ingress: routes}}
	s.ID = id
	return s
}

func task(id, serviceID, node, addr string) *api.Task {
	t := &api.Task{ServiceID: serviceID, NodeID: node, DesiredState: api.TaskRunning}
	t.ID = id
	t.Status.State = api.TaskRunning
	t.Status.Addr = addr
	return t
}

func TestMatchPrecedence(t *testing.T) {
	tb := BuildTable(TableOptions{}, []*api.Service{
		svc("a", "root", api.IngressRoute{Host: "shop.example", Port: 80}),
		svc("b", "api", api.IngressRoute{Host: "shop.example", Path: "/api", Port: 80}),
		svc("c", "apiv2", api.IngressRoute{Host: "shop.example", Path: "/api/v2/", Port: 80}),
		svc("d", "wild", api.IngressRoute{Host: "*.shop.example", Port: 80},
			api.IngressRoute{Host: "*.shop.example", Path: "/static", Port: 80}),
		svc("e", "exactsub", api.IngressRoute{Host: "Admin.Shop.Example.", Path: "/admin", Port: 80}),
	}, nil)
	tests := []struct {
		host, path string
		want       string // service, "" for no match
		wantPath   string
	}{
		{"shop.example", "/", "root", "/"},
		{"shop.example", "/x", "root", "/"},
		{"shop.example", "/api", "api", "/api"},
		{"shop.example", "/api/", "api", "/api"},
		{"shop.example", "/api/x", "api", "/api"},
		{"shop.example", "/apix", "root", "/"},
		{"shop.example", "/api/v2", "apiv2", "/api/v2"},
		{"shop.example", "/api/v2/x", "apiv2", "/api/v2"},
		{"shop.example", "/api/v20", "api", "/api"},
		{"SHOP.example:8080", "/api", "api", "/api"},
		{"shop.example.", "/", "root", "/"},
		{"shop.example.:443", "/", "root", "/"},
		{"a.shop.example", "/", "wild", "/"},
		{"a.shop.example", "/static/app.js", "wild", "/static"},
		{"a.b.shop.example", "/", "", ""},
		{".shop.example", "/", "", ""},
		{"admin.shop.example", "/admin/users", "exactsub", "/admin"},
		// the exact host has no route for "/": the wildcard takes it
		{"admin.shop.example", "/", "wild", "/"},
		{"other.example", "/", "", ""},
		{"", "/", "", ""},
		{"[::1]:80", "/", "", ""},
	}
	for _, tt := range tests {
		r, ok := tb.Match(tt.host, tt.path)
		got, gotPath := "", ""
		if ok {
			got, gotPath = r.Service, r.Spec.Path
		}
		if got != tt.want || gotPath != tt.wantPath {
			t.Errorf("Match(%q, %q) = %q %q, want %q %q", tt.host, tt.path, got, gotPath, tt.want, tt.wantPath)
		}
	}
	if got, want := tb.Hosts(), []string{"*.shop.example", "admin.shop.example", "shop.example"}; !slices.Equal(got, want) {
		t.Errorf("Hosts() = %v, want %v", got, want)
	}
	for host, want := range map[string]bool{"shop.example": true, "X.Shop.Example:443": true, "a.b.shop.example": false, "example": false} {
		if got := tb.HasHost(host); got != want {
			t.Errorf("HasHost(%q) = %v, want %v", host, got, want)
		}
	}
	var keys []string
	for _, r := range tb.Routes() {
		keys = append(keys, r.Key())
	}
	want := []string{"*.shop.example/", "*.shop.example/static", "admin.shop.example/admin", "shop.example/", "shop.example/api", "shop.example/api/v2"}
	if !slices.Equal(keys, want) {
		t.Errorf("Routes() keys = %v, want %v", keys, want)
	}
}

func TestBuildTableBackends(t *testing.T) {
	unhealthy := task("t4", "s1", "n1", "10.0.0.4")
	unhealthy.Spec.HealthCheck = &api.HealthCheck{}
	unhealthy.Status.Health = api.HealthUnhealthy
	standby := task("t5", "s1", "n1", "10.0.0.5")
	standby.Standby = true
	stopping := task("t6", "s1", "n1", "10.0.0.6")
	stopping.DesiredState = api.TaskShutdown
	tasks := []*api.Task{
		task("t1", "s1", "n1", "10.0.0.1/24"),
		task("t2", "s1", "n2", "10.0.1.2"),
		task("t3", "s1", "n3", "10.0.2.3"), // n3 unreachable
		unhealthy, standby, stopping,
		task("t7", "s2", "n1", "10.0.0.7"), // another service
	}
	services := []*api.Service{svc("s1", "web", api.IngressRoute{Host: "web.example", Port: 8080})}
	addrs := func(o TableOptions) []string {
		tb := BuildTable(o, services, tasks)
		r, ok := tb.Match("web.example", "/")
		if !ok {
			t.Fatalf("BuildTable(%+v): no route for web.example", o)
		}
		var out []string
		for _, b := range r.Backends {
			out = append(out, b.Addr+"@"+b.NodeID)
		}
		return out
	}
	o := TableOptions{NodeID: "n1", Unreachable: map[string]bool{"n3": true}}
	if got, want := addrs(o), []string{"10.0.0.1:8080@n1", "10.0.1.2:8080@n2"}; !slices.Equal(got, want) {
		t.Errorf("BuildTable(%+v) backends %v, want %v", o, got, want)
	}
	o.LocalOnly = true
	if got, want := addrs(o), []string{"10.0.0.1:8080@n1"}; !slices.Equal(got, want) {
		t.Errorf("BuildTable(%+v) backends %v, want %v", o, got, want)
	}
	st := BuildTable(o, services, tasks).Routes()[0].Status()
	if st.Service != "web" || len(st.Backends) != 1 || st.Backends[0].TaskID != "t1" {
		t.Errorf("Route.Status() = %+v, want service web with backend t1", st)
	}
}

func TestBuildTableDuplicateRouteFirstServiceWins(t *testing.T) {
	tb := BuildTable(TableOptions{}, []*api.Service{
		svc("zz", "late", api.IngressRoute{Host: "x.example", Path: "/a/", Port: 1}),
		svc("aa", "early", api.IngressRoute{Host: "X.example", Path: "/a", Port: 1}),
	}, nil)
	if rs := tb.Routes(); len(rs) != 1 || rs[0].Service != "early" {
		t.Errorf("BuildTable with a duplicate host and path: routes %v, want only service early's", rs)
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "/",
		"/":                "/",
		"/a/b/":            "/a/b/",
		"/public/../admin": "/admin",
		"//admin":          "/admin",
		"/a/./b":           "/a/b",
		"a":                "/a",
		"/..":              "/",
	} {
		if got := CleanPath(in); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// refMatch is the slow reference of Table.Match: every route is
// checked, and the best is an exact host over a wildcard, then the
// longest path.
func refMatch(routes []*Route, host, p string) *Route {
	h := strings.ToLower(host)
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i > 0 {
			h = h[1:i]
		}
	} else if strings.Count(h, ":") == 1 {
		h = h[:strings.Index(h, ":")]
	}
	h = strings.TrimSuffix(h, ".")
	var best *Route
	score := func(r *Route) int {
		s := len(r.Spec.Path)
		if !strings.HasPrefix(r.Spec.Host, "*.") {
			s += 1 << 20
		}
		return s
	}
	for _, r := range routes {
		hostOK := r.Spec.Host == h
		if suffix, ok := strings.CutPrefix(r.Spec.Host, "*."); ok {
			label, rest, found := strings.Cut(h, ".")
			hostOK = found && label != "" && rest == suffix
		}
		if !hostOK || h == "" {
			continue
		}
		rp := r.Spec.Path
		pathOK := rp == "/" && strings.HasPrefix(p, "/") ||
			p == rp || strings.HasPrefix(p, rp+"/")
		if !pathOK {
			continue
		}
		if best == nil || score(r) > score(best) {
			best = r
		}
	}
	return best
}

var fuzzRoutes = []*api.Service{
	svc("a", "a", api.IngressRoute{Host: "example.com", Port: 1},
		api.IngressRoute{Host: "example.com", Path: "/api", Port: 1},
		api.IngressRoute{Host: "example.com", Path: "/api/v1", Port: 1}),
	svc("b", "b", api.IngressRoute{Host: "*.example.com", Path: "/", Port: 1},
		api.IngressRoute{Host: "*.example.com", Path: "/api", Port: 1}),
	svc("c", "c", api.IngressRoute{Host: "a.example.com", Path: "/x", Port: 1}),
	svc("d", "d", api.IngressRoute{Host: "*.a.example.com", Path: "/y/z", Port: 1}),
}

func checkMatch(t *testing.T, tb *Table, host, p string) {
	r, ok := tb.Match(host, p)
	want := refMatch(tb.Routes(), host, p)
	if ok != (want != nil) || (ok && r != want) {
		t.Fatalf("Match(%q, %q) = %v %v, the reference says %v", host, p, r, ok, want)
	}
}

func FuzzMatch(f *testing.F) {
	tb := BuildTable(TableOptions{}, fuzzRoutes, nil)
	for _, s := range [][2]string{
		{"example.com", "/"}, {"EXAMPLE.com:80", "/api/"}, {"b.example.com.", "/api/v1/x"},
		{"a.example.com", "/x"}, {"q.a.example.com", "/y/z/"}, {"[::1]:8080", "/"}, {"::1", "/"},
		{".example.com", "/"}, {"example.com", ""}, {"example.com", "api"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, p string) {
		checkMatch(t, tb, host, p)
		checkMatch(t, tb, host, CleanPath(p))
	})
}

// TestMatchProperty: over random tables and requests, Match agrees with
// the reference.
func TestMatchProperty(t *testing.T) {
	labels := []string{"a", "b", "example", "com", "*"}
	segs := []string{"api", "v1", "x", "apix", ""}
	genHost := func(t *rapid.T, name string, wild bool) string {
		n := rapid.IntRange(1, 3).Draw(t, name+"n")
		var ls []string
		for i := 0; i < n; i++ {
			l := rapid.SampledFrom(labels[:4]).Draw(t, name+"l")
			ls = append(ls, l)
		}
		if wild && rapid.Bool().Draw(t, name+"w") {
			ls = append([]string{"*"}, ls...)
		}
		return strings.Join(ls, ".")
	}
	genPath := func(t *rapid.T, name string) string {
		n := rapid.IntRange(0, 3).Draw(t, name+"n")
		p := ""
		for i := 0; i < n; i++ {
			p += "/" + rapid.SampledFrom(segs).Draw(t, name+"s")
		}
		if p == "" {
			p = "/"
		}
		return p
	}
	rapid.Check(t, func(t *rapid.T) {
		var services []*api.Service
		for i := range rapid.IntRange(1, 8).Draw(t, "routes") {
			services = append(services, svc(string(rune('a'+i)), "s",
				api.IngressRoute{Host: genHost(t, "rh", true), Path: genPath(t, "rp"), Port: 1}))
		}
		tb := BuildTable(TableOptions{}, services, nil)
		for range 10 {
			host, p := genHost(t, "qh", false), genPath(t, "qp")
			r, ok := tb.Match(host, p)
			want := refMatch(tb.Routes(), host, p)
			if ok != (want != nil) || (ok && r != want) {
				t.Fatalf("Match(%q, %q) = %v, the reference says %v", host, p, r, want)
			}
		}
	})
}
