// Command hello is a static HTTP server for test images: it answers every
// request with "hello\n" on the address of its one argument (default
// :8080). The ingress bench puts it behind both proxies, so that the
// backend is not what the figure measures (busybox httpd forks a process
// per connection).
package main

import (
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	body := []byte("hello\n")
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		})}
	log.Fatal(srv.ListenAndServe())
}
