// Package loopback opens the sockets of a DNS server on loopback for tests
// and the DNS bench: one port, for both UDP and TCP.
package loopback

import (
	"errors"
	"net"
)

// ListenPair listens on one loopback port for both UDP and TCP, as a DNS
// server does. The kernel picks the UDP port; the TCP port of the same
// number may be taken (by any connection of a test running beside), so it
// tries other ports.
func ListenPair() (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		if l, err := net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			return pc, l, nil
		}
		pc.Close()
	}
	return nil, nil, errors.New("no loopback port free for both UDP and TCP")
}
