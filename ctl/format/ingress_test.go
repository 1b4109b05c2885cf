package format

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func TestIngressTable(t *testing.T) {
	no := false
	routes := []api.IngressRouteStatus{
		{Service: "shop-api", ServiceID: "s2", Route: api.IngressRoute{Host: "shop.example.com", Path: "/api", Port: 9000, StripPrefix: true},
			Backends: []api.IngressBackend{{TaskID: "t1", Addr: "10.240.1.5:9000", Serving: true}, {TaskID: "t2", Addr: "10.240.2.5:9000"}},
			Cert:     api.IngressCert{State: "valid", Source: "acme", NotAfter: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}},
		{Service: "shop", ServiceID: "s1", Route: api.IngressRoute{Host: "shop.example.com", Path: "/", Port: 8080},
			Backends: []api.IngressBackend{{TaskID: "t3", Serving: true}, {TaskID: "t4", Serving: true}, {TaskID: "t5", Serving: true}},
			Cert:     api.IngressCert{State: "expiring", Source: "acme", NotAfter: time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)}},
		{Service: "wild", ServiceID: "s3", Route: api.IngressRoute{Host: "*.edge.example.com", Port: 80, TLS: &api.IngressTLS{Challenge: api.ChallengeDNS01}},
			Cert: api.IngressCert{State: "pending", Source: "acme"}},
		{Service: "intranet", ServiceID: "s4", Route: api.IngressRoute{Host: "intra.example.com", Path: "/", Port: 80, TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "intra-cert"}},
			Backends: []api.IngressBackend{{TaskID: "t6", Serving: true}},
			Cert:     api.IngressCert{State: "error", Source: "secret", Error: "secret \"intra-cert\" holds no private key\x1b[2J"}},
		{Service: "plain", ServiceID: "s5", Route: api.IngressRoute{Host: "plain.example.com", Path: "/", Port: 80, TLS: &api.IngressTLS{Source: api.TLSNone}, HTTPSRedirect: &no},
			Cert: api.IngressCert{State: "none"}},
		{Service: "old", ServiceID: "s6", Route: api.IngressRoute{Host: "old.example.com", Path: "/", Port: 80},
			Cert: api.IngressCert{State: "expired", Source: "acme", NotAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	var b bytes.Buffer
	if err := IngressTable(&b, routes); err != nil {
		t.Fatal(err)
	}
	golden(t, "ingress_ls", b.Bytes())
	for _, want := range []string{"valid until 2027-03-01", "1/2", "3/3", "acme/dns-01", "secret:intra-cert", `\u001b[2J`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("ingress ls does not show %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("ingress ls printed a raw escape from a certificate error:\n%q", b.String())
	}
	var empty bytes.Buffer
	IngressTable(&empty, nil)
	if got := empty.String(); got != "HOST   PATH   SERVICE   PORT   BACKENDS   TLS   CERT\n" {
		t.Errorf("ingress ls of no routes = %q, want the header alone", got)
	}
}

func TestPrettyIngress(t *testing.T) {
	services, _, _ := fixture()
	s := services[0]
	yes := true
	s.Spec.Ingress = []api.IngressRoute{
		{Host: "shop.example.com", Path: "/", Port: 8080},
		{Host: "shop.example.com", Path: "/api", Port: 9000, Rewrite: "/v2", TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "shop-cert"},
			HTTPSRedirect: &yes, Allow: []string{"10.0.0.0/8", "192.168.0.0/16"}, Deny: []string{"10.1.0.0/16"},
			RateLimit: &api.RateLimit{Rate: 10, Burst: 20}, BasicAuth: &api.BasicAuth{Secret: "users", Realm: "Shop admin"},
			RequestHeaders:  &api.HeaderRules{Set: map[string]string{"X-Prefix": "/api"}, Remove: []string{"Cookie"}},
			ResponseHeaders: &api.HeaderRules{Add: map[string]string{"X-Frame-Options": "DENY"}}, ProxyProtocol: "v2"},
		{Host: "plain.example.com", Path: "/", Port: 80, StripPrefix: true, TLS: &api.IngressTLS{Source: api.TLSNone}},
	}
	var b bytes.Buffer
	if err := PrettyService(&b, &s, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_pretty_ingress", b.Bytes())
}
