package opts

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParseIngress(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		in      string
		want    api.IngressRoute
		wantErr string
	}{
		{in: "host=shop.example.com,port=8080", want: api.IngressRoute{Host: "shop.example.com", Port: 8080}},
		{in: "host=Shop.Example.com,path=/api,port=8080,strip-prefix",
			want: api.IngressRoute{Host: "shop.example.com", Path: "/api", Port: 8080, StripPrefix: true}},
		{in: "host=a.example,port=80,strip-prefix=false,rewrite=/v2", want: api.IngressRoute{Host: "a.example", Port: 80, Rewrite: "/v2"}},
		{in: "host=a.example,port=80,tls=secret:shop-cert,redirect=true",
			want: api.IngressRoute{Host: "a.example", Port: 80, TLS: &api.IngressTLS{Source: "secret", Secret: "shop-cert"}, HTTPSRedirect: &yes}},
		{in: "host=*.a.example, port=80, tls=acme, challenge=dns-01",
			want: api.IngressRoute{Host: "*.a.example", Port: 80, TLS: &api.IngressTLS{Source: "acme", Challenge: "dns-01"}}},
		{in: "host=a.example,port=80,challenge=tls-alpn-01", want: api.IngressRoute{Host: "a.example", Port: 80, TLS: &api.IngressTLS{Challenge: "tls-alpn-01"}}},
		{in: "host=a.example,port=80,tls=none,redirect=false,proxy-protocol=V2",
			want: api.IngressRoute{Host: "a.example", Port: 80, TLS: &api.IngressTLS{Source: "none"}, HTTPSRedirect: &no, ProxyProtocol: "v2"}},

		{in: "", wantErr: "the host is missing"},
		{in: "path=/api,port=80", wantErr: "the host is missing"},
		{in: "host=a.example", wantErr: "the port of the tasks the requests go to is missing"},
		{in: "host=a.example,port=http", wantErr: `port "http" is not a number from 1 to 65535`},
		{in: "host=a.example,port=0", wantErr: "is not a number from 1 to 65535"},
		{in: "host=a.example,port=80,tls=secret", wantErr: "tls=secret:NAME"},
		{in: "host=a.example,port=80,tls=letsencrypt", wantErr: "is not acme, none or secret:NAME"},
		{in: "host=a.example,port=80,redirect=maybe", wantErr: `redirect="maybe" is not true or false`},
		{in: "host=a.example,port=80,rate=10", wantErr: `unknown key "rate"`},
		{in: "host=a.example,port=80,,", wantErr: "an empty item"},
		{in: `host=a.example,"port=80`, wantErr: "not a list of KEY=VALUE items"},
	} {
		got, err := ParseIngress(c.in)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("ParseIngress(%q) = %s, %v; want an error saying %q", c.in, js(got), err, c.wantErr)
		case c.wantErr == "" && err != nil:
			t.Errorf("ParseIngress(%q) = %v", c.in, err)
		case c.wantErr == "" && js(got) != js(c.want):
			t.Errorf("ParseIngress(%q) = %s, want %s", c.in, js(got), js(c.want))
		}
	}
}

func TestSetIngress(t *testing.T) {
	have := []api.IngressRoute{{Host: "a.example", Path: "/", Port: 80}, {Host: "a.example", Path: "/api", Port: 81, RateLimit: &api.RateLimit{Rate: 1}}}
	for _, c := range []struct {
		name    string
		rm, add []string
		want    string // host+path:port, ...
		wantErr string
	}{
		{name: "add", add: []string{"host=b.example,port=82"}, want: "a.example/:80 a.example/api:81 b.example:82"},
		{name: "rm by host", rm: []string{"a.example"}, want: "a.example/api:81"},
		{name: "rm by host and path, in capitals, with a slash", rm: []string{"A.example/api/"}, want: "a.example/:80"},
		{name: "replace", add: []string{"host=a.example,path=/api/,port=90"}, want: "a.example/:80 a.example/api/:90"},
		{name: "rm then add", rm: []string{"a.example/api"}, add: []string{"host=a.example,path=/api,port=91"}, want: "a.example/:80 a.example/api:91"},
		{name: "rm all", rm: []string{"a.example", "a.example/api"}, want: ""},
		{name: "rm a route it lacks", rm: []string{"a.example/web"}, wantErr: "the service has no ingress route host=a.example path=/web (it has a.example, a.example/api)"},
		{name: "rm nothing", rm: []string{"/api"}, wantErr: "give the route's HOST[/PATH]"},
		{name: "a bad add", add: []string{"host=a.example"}, wantErr: "port"},
	} {
		got, err := SetIngress(have, c.rm, c.add)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: SetIngress(rm %q, add %q) = %v; want an error saying %q", c.name, c.rm, c.add, err, c.wantErr)
			}
			continue
		}
		var parts []string
		for _, r := range got {
			parts = append(parts, r.Host+r.Path+":"+strconv.Itoa(int(r.Port)))
		}
		if s := strings.Join(parts, " "); err != nil || s != c.want {
			t.Errorf("%s: SetIngress(rm %q, add %q) = %q, %v; want %q", c.name, c.rm, c.add, s, err, c.want)
		}
	}
	if have[1].RateLimit == nil || have[1].Port != 81 || len(have) != 2 {
		t.Errorf("SetIngress changed its input: %s", js(have))
	}
}

func TestIngressMiddleware(t *testing.T) {
	base := func() []api.IngressRoute {
		return []api.IngressRoute{{Host: "shop.example.com", Path: "/api", Port: 80}, {Host: "shop.example.com", Path: "/", Port: 80,
			RateLimit: &api.RateLimit{Rate: 5, Burst: 5}, BasicAuth: &api.BasicAuth{Secret: "old"},
			ResponseHeaders: &api.HeaderRules{Set: map[string]string{"X-A": "1"}}}}
	}
	for _, c := range []struct {
		in      string
		route   int    // the index of the route changed
		want    string // the route after, as JSON
		wantErr string
	}{
		{in: "host=shop.example.com,path=/api,allow=10.0.0.0/8;192.168.0.1,deny=10.1.2.3/16",
			want: `{"host":"shop.example.com","path":"/api","port":80,"allow":["10.0.0.0/8","192.168.0.1/32"],"deny":["10.1.0.0/16"]}`},
		{in: "host=shop.example.com,path=/api,allow=10.0.0.0/8,allow=192.168.0.0/16;::1,deny=10.1.0.0/16,deny=10.2.0.0/16",
			want: `{"host":"shop.example.com","path":"/api","port":80,"allow":["10.0.0.0/8","192.168.0.0/16","::1/128"],"deny":["10.1.0.0/16","10.2.0.0/16"]}`},
		{in: "host=SHOP.example.com,path=/api/,rate=10,burst=20,basic-auth=users,realm=Shop admin",
			want: `{"host":"shop.example.com","path":"/api","port":80,"rateLimit":{"rate":10,"burst":20},"basicAuth":{"secret":"users","realm":"Shop admin"}}`},
		{in: `host=shop.example.com,path=/api,req-header-set=X-Prefix: /api,req-header-add=X-B:2,req-header-rm=Cookie,"resp-header-set=Cache-Control:no-cache, no-store",resp-header-rm=Server`,
			want: `{"host":"shop.example.com","path":"/api","port":80,"requestHeaders":{"set":{"X-Prefix":"/api"},"add":{"X-B":"2"},"remove":["Cookie"]},"responseHeaders":{"set":{"Cache-Control":"no-cache, no-store"},"remove":["Server"]}}`},
		// path left out is "/"; a change keeps what it does not name.
		{in: "host=shop.example.com,burst=50,resp-header-set=X-B:2", route: 1,
			want: `{"host":"shop.example.com","path":"/","port":80,"rateLimit":{"rate":5,"burst":50},"basicAuth":{"secret":"old"},"responseHeaders":{"set":{"X-A":"1","X-B":"2"}}}`},
		// Empty values and rate=0 take middleware off.
		{in: "host=shop.example.com,path=/,rate=0,basic-auth=,allow=", route: 1,
			want: `{"host":"shop.example.com","path":"/","port":80,"responseHeaders":{"set":{"X-A":"1"}}}`},

		{in: "host=www.example.com,rate=1", wantErr: "no ingress route host=www.example.com path=/ on service shop: add it with --ingress first (it has shop.example.com/api, shop.example.com)"},
		{in: "host=shop.example.com,path=/web,rate=1", wantErr: "no ingress route host=shop.example.com path=/web on service shop"},
		{in: "path=/api,rate=1", wantErr: "name the route with host="},
		{in: "host=shop.example.com,path=/api", wantErr: "nothing to set"},
		{in: "host=shop.example.com,path=/api,allow=10.0.0.0/33", wantErr: "allow: \"10.0.0.0/33\" is not a CIDR prefix"},
		{in: "host=shop.example.com,path=/api,rate=fast", wantErr: `rate="fast" is not a number`},
		{in: "host=shop.example.com,path=/api,burst=-1", wantErr: `burst="-1" is not a whole number`},
		{in: "host=shop.example.com,path=/api,burst=10", wantErr: "burst goes with a rate limit: add rate=R"},
		{in: "host=shop.example.com,path=/api,realm=x", wantErr: "realm goes with basic auth"},
		{in: "host=shop.example.com,path=/api,req-header-set=X-A", wantErr: "is not NAME:VALUE"},
		{in: "host=shop.example.com,path=/api,resp-header-rm=", wantErr: "needs a header name"},
		{in: "host=shop.example.com,path=/api,port=81", wantErr: `unknown key "port"`},
	} {
		routes := base()
		before := js(routes)
		m, err := ParseIngressMiddleware(c.in)
		var got []api.IngressRoute
		if err == nil {
			got, err = m.Apply(routes, "shop")
		}
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("--ingress-mw %q: %v; want an error saying %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("--ingress-mw %q: %v", c.in, err)
			continue
		}
		if s := js(got[c.route]); s != c.want {
			t.Errorf("--ingress-mw %q gave route %s\nwant %s", c.in, s, c.want)
		}
		if js(routes) != before {
			t.Errorf("--ingress-mw %q changed its input routes: %s", c.in, js(routes))
		}
	}
}
