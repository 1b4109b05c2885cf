// Package testport finds loopback ports for servers that a test starts as
// other processes, which bind the port themselves.
//
// A port the kernel hands out for ":0" comes from the ephemeral range
// (net.ipv4.ip_local_port_range), the same range every outgoing connection
// of every test running beside takes its local port from: once the port is
// closed again, such a connection may take it before the server binds it.
// So the ports here come from below that range, where only an explicit
// bind can take them.
package testport

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the lowest port handed out.
const lowest = 10000

// Addr returns 127.0.0.1:PORT, with PORT free for TCP now and outside the
// ephemeral range.
func Addr(t testing.TB) string {
	t.Helper()
	addr, err := Free("tcp")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Free returns 127.0.0.1:PORT, with PORT free now on each of networks
// ("tcp", "udp") and outside the ephemeral range: for a bench that starts
// a server the same way a test does.
func Free(networks ...string) (string, error) {
	top := ephemeralStart() - 1
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowest+rand.IntN(top-lowest+1)))
		if free(addr, networks) {
			return addr, nil
		}
	}
	return "", fmt.Errorf("testport: no port free for %v in %d-%d", networks, lowest, top)
}

// free says whether addr can be bound on each of networks.
func free(addr string, networks []string) bool {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, n := range networks {
		var c io.Closer
		var err error
		if strings.HasPrefix(n, "udp") {
			c, err = net.ListenPacket(n, addr)
		} else {
			c, err = net.Listen(n, addr)
		}
		if err != nil {
			return false
		}
		closers = append(closers, c)
	}
	return true
}

// ephemeralStart is the first port of the ephemeral range: 32768, the
// kernel's default, when it cannot be read or leaves too little below it.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowest+1000 {
		return 32768
	}
	return n
}
