package manager_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// BenchmarkCreateServices creates b.N services through the API with 8
// concurrent clients.
func BenchmarkCreateServices(b *testing.B) {
	m := managertest.Start(b, managertest.Options{})
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	conc := 8
	if s := os.Getenv("CONC"); s != "" {
		conc, _ = strconv.Atoi(s)
	}
	b.ResetTimer()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				spec := api.ServiceSpec{Name: fmt.Sprintf("svc-%d", i), Image: "localhost/busybox", Replicas: 1}
				if _, err := m.Client.CreateService(ctx, spec); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkGetService reads one service by ID.
func BenchmarkGetService(b *testing.B) {
	m := managertest.Start(b, managertest.Options{})
	ctx := context.Background()
	s, err := m.Client.CreateService(ctx, api.ServiceSpec{Name: "web", Image: "busybox"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.Client.Service(ctx, s.ID, client.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateServicesMetrics(b *testing.B) {
	m := managertest.Start(b, managertest.Options{})
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				spec := api.ServiceSpec{Name: fmt.Sprintf("svc-%d", i), Image: "localhost/busybox", Replicas: 1}
				if _, err := m.Client.CreateService(ctx, spec); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	out, _ := m.Client.Raw(ctx, "GET", "/metrics")
	b.Log(string(out))
}
