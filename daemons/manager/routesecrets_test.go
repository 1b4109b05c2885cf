package manager_test

import (
	"context"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// TestRouteSecretsMustExist: an ingress route that names a secret (its
// certificate's, its basic auth users') is refused while the secret does
// not exist, and the secret cannot be removed while a route names it;
// each refusal says what to do and changes nothing.
func TestRouteSecretsMustExist(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	ctx := context.Background()
	refused := func(what string, err error, code, says string) {
		t.Helper()
		if !api.IsCode(err, code) || !strings.Contains(err.Error(), says) {
			t.Fatalf("%s: %v; want %s saying %q", what, err, code, says)
		}
	}

	withTLS := svcSpec("shop")
	withTLS.Ingress = []api.IngressRoute{{Host: "shop.example", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "shop-tls"}}}
	_, err := m.Client.CreateService(ctx, withTLS)
	refused("create with a missing certificate secret", err, api.CodeNotFound, "create it first with warrenctl secret create shop-tls FILE")
	if _, err := m.Client.Service(ctx, "shop", client.ReadOptions{}); !api.IsCode(err, api.CodeNotFound) {
		t.Fatalf("the refused service exists: %v", err)
	}

	if _, err := m.Client.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: "shop-tls", Data: []byte("pem")}); err != nil {
		t.Fatal(err)
	}
	svc, err := m.Client.CreateService(ctx, withTLS)
	if err != nil {
		t.Fatalf("create with the certificate secret there: %v", err)
	}

	withAuth := withTLS
	withAuth.Ingress = append([]api.IngressRoute{}, withTLS.Ingress...)
	withAuth.Ingress = append(withAuth.Ingress, api.IngressRoute{Host: "shop.example", Path: "/admin", Port: 8080,
		TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "shop-tls"}, BasicAuth: &api.BasicAuth{Secret: "admins"}})
	_, err = m.Client.UpdateService(ctx, "shop", withAuth, svc.Version)
	refused("update adding a route with a missing basic auth secret", err, api.CodeNotFound, `names secret "admins", which does not exist`)
	got, err := m.Client.Service(ctx, "shop", client.ReadOptions{})
	if err != nil || len(got.Spec.Ingress) != 1 || got.Version != svc.Version {
		t.Fatalf("the refused update changed the service: %+v, %v", got, err)
	}

	err = m.Client.RemoveFile(ctx, api.KindSecret, "shop-tls")
	refused("remove a secret a route names", err, api.CodeConflict, "named by the ingress routes of service shop")
	if _, err := m.Client.Secret(ctx, "shop-tls"); err != nil {
		t.Fatalf("the refused removal removed the secret: %v", err)
	}

	if err := m.Client.RemoveService(ctx, "shop", 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Client.RemoveFile(ctx, api.KindSecret, "shop-tls"); err != nil {
		t.Fatalf("remove the secret once no route names it: %v", err)
	}
}
