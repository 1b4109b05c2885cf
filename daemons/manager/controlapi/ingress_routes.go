package controlapi

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// GET /v1/ingress/routes: every service's ingress routes, where they go
// and how their certificates stand. The certificates are read here, on
// a manager: an ACME one from the ingress store where warren-ingress's
// certmagic keeps it, one of source secret from its secret. Only the
// leaf certificate's issuer and dates go out, never a key.

// ingressRoutes answers GET /v1/ingress/routes.
func (s *Server) ingressRoutes(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	now := time.Now()
	var out []api.IngressRouteStatus
	s.store.View(func(v *store.View) error {
		svcs := v.Services()
		tasks := map[string][]*api.Task{}
		for _, svc := range svcs {
			if len(svc.Spec.Ingress) > 0 {
				tasks[svc.ID] = v.Tasks(store.TaskFilter{ServiceID: svc.ID})
			}
		}
		out = IngressRouteStatuses(svcs, tasks, func(rt *api.IngressRoute) api.IngressCert {
			return s.routeCert(v, rt, now)
		})
		return nil
	})
	httpx.JSON(w, http.StatusOK, out)
}

// IngressRouteStatuses is every route of svcs, by service name, host and
// path, with the live tasks of each service (tasks, by service ID) as
// its backends and its certificate as cert says.
func IngressRouteStatuses(svcs []*api.Service, tasks map[string][]*api.Task, cert func(*api.IngressRoute) api.IngressCert) []api.IngressRouteStatus {
	out := []api.IngressRouteStatus{}
	for _, svc := range svcs {
		for i := range svc.Spec.Ingress {
			rt := svc.Spec.Ingress[i]
			st := api.IngressRouteStatus{Service: svc.Spec.Name, ServiceID: svc.ID, Route: rt, Backends: []api.IngressBackend{}, Cert: cert(&rt)}
			for _, t := range tasks[svc.ID] {
				if !t.Live() {
					continue
				}
				b := api.IngressBackend{TaskID: t.ID, NodeID: t.NodeID, Serving: t.Serving()}
				if a := t.RunningAddr(); a.IsValid() {
					b.Addr = net.JoinHostPort(a.String(), strconv.Itoa(int(rt.Port)))
				}
				st.Backends = append(st.Backends, b)
			}
			sort.Slice(st.Backends, func(i, j int) bool { return st.Backends[i].TaskID < st.Backends[j].TaskID })
			out = append(out, st)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Route.Host != b.Route.Host {
			return a.Route.Host < b.Route.Host
		}
		if a.Route.Path != b.Route.Path {
			return a.Route.Path < b.Route.Path
		}
		return a.Service < b.Service
	})
	return out
}

// routeCert is how route rt's certificate stands at now.
func (s *Server) routeCert(v *store.View, rt *api.IngressRoute, now time.Time) api.IngressCert {
	source := api.TLSAcme
	if rt.TLS != nil && rt.TLS.Source != "" {
		source = rt.TLS.Source
	}
	switch source {
	case api.TLSNone:
		return api.IngressCert{State: "none", Source: source}
	case api.TLSSecret:
		name := rt.TLS.Secret
		val, err := s.openSecret(v, name)
		if err != nil {
			return api.IngressCert{State: "error", Source: source, Error: err.Error()}
		}
		c := CertState(val.Data, now)
		clear(val.Data)
		c.Source = source
		return c
	}
	// certmagic's layout: certificates/<issuer>/<host>/<host>.crt, a
	// wildcard's "*" written "wildcard_". Of several issuers' (staging,
	// then production), the one that lasts longest.
	h := strings.ReplaceAll(strings.ToLower(rt.Host), "*", "wildcard_")
	best := api.IngressCert{State: "pending", Source: source}
	for _, dir := range v.IngressList("certificates", false) {
		if !dir.Dir {
			continue
		}
		key := dir.Key + "/" + h + "/" + h + ".crt"
		_, sealed, ok := v.IngressGet(key)
		if !ok {
			continue
		}
		pemBytes, err := s.cfg.Keys.Open(sealed, store.PlaceIngress(key))
		if err != nil {
			if best.State == "pending" {
				best = api.IngressCert{State: "error", Source: source, Error: "the certificate does not open on this manager: " + err.Error()}
			}
			continue
		}
		c := CertState(pemBytes, now)
		c.Source = source
		if best.State == "pending" || best.State == "error" || c.NotAfter.After(best.NotAfter) {
			best = c
		}
	}
	return best
}

// CertState reads the first certificate of a PEM chain (a key in it is
// skipped, never parsed nor returned) and says how it stands at now:
// valid, expiring past two thirds of its lifetime, or expired; error if
// there is none.
func CertState(chain []byte, now time.Time) api.IngressCert {
	rest := chain
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return api.IngressCert{State: "error", Error: "no PEM certificate in it"}
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return api.IngressCert{State: "error", Error: "the certificate does not parse: " + err.Error()}
		}
		c := api.IngressCert{State: "valid", Issuer: issuerName(leaf), NotAfter: leaf.NotAfter.UTC()}
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		switch {
		case !now.Before(leaf.NotAfter):
			c.State = "expired"
		case now.After(leaf.NotBefore.Add(life * 2 / 3)):
			c.State = "expiring"
		}
		return c
	}
}

func issuerName(c *x509.Certificate) string {
	if n := c.Issuer.CommonName; n != "" {
		if len(c.Issuer.Organization) > 0 {
			return c.Issuer.Organization[0] + " " + n
		}
		return n
	}
	return c.Issuer.String()
}
