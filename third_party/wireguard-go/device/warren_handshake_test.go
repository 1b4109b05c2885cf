package device

import (
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// Warren's tests of its change to ConsumeMessageResponse (see README.warren.md).

func warrenDevice(t *testing.T) *Device {
	t.Helper()
	sk, err := newPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDevice(tuntest.NewChannelTUN().TUN(), conn.NewDefaultBind(), NewLogger(LogLevelSilent, ""))
	t.Cleanup(d.Close)
	if err := d.SetPrivateKey(sk); err != nil {
		t.Fatal(err)
	}
	return d
}

// warrenPair is two devices, each with the other as its peer.
func warrenPair(t *testing.T) (d1, d2 *Device, peerOf1, peerOf2 *Peer) {
	d1, d2 = warrenDevice(t), warrenDevice(t)
	var err error
	if peerOf1, err = d1.NewPeer(d2.staticIdentity.privateKey.publicKey()); err != nil {
		t.Fatal(err)
	}
	if peerOf2, err = d2.NewPeer(d1.staticIdentity.privateKey.publicKey()); err != nil {
		t.Fatal(err)
	}
	peerOf1.Start()
	peerOf2.Start()
	return d1, d2, peerOf1, peerOf2
}

// answer has d consume an initiation and answer it, beginning its session
// as the responder, as RoutineHandshake does.
func answer(t *testing.T, d *Device, init *MessageInitiation) *MessageResponse {
	t.Helper()
	p := d.ConsumeMessageInitiation(init)
	if p == nil {
		t.Fatal("initiation refused")
	}
	resp, err := d.CreateMessageResponse(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.BeginSymmetricSession(); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestWarrenHandshake(t *testing.T) {
	d1, d2, peerOf1, peerOf2 := warrenPair(t)
	init, err := d1.CreateMessageInitiation(peerOf1)
	if err != nil {
		t.Fatal(err)
	}
	resp := answer(t, d2, init)
	if d1.ConsumeMessageResponse(resp) != peerOf1 {
		t.Fatal("the answer to d1's initiation was refused")
	}
	if err := peerOf1.BeginSymmetricSession(); err != nil {
		t.Fatal(err)
	}
	k1, k2 := peerOf1.keypairs.current, peerOf2.keypairs.next.Load()
	if k1 == nil || k2 == nil {
		t.Fatalf("keypairs: initiator's current %v, responder's next %v; want both", k1, k2)
	}
	if k1.localIndex == 0 || k1.remoteIndex != k2.localIndex || k2.remoteIndex != k1.localIndex {
		t.Fatalf("indexes: initiator local %d remote %d, responder local %d remote %d; want each's remote the other's local",
			k1.localIndex, k1.remoteIndex, k2.localIndex, k2.remoteIndex)
	}
	if d1.indexTable.Lookup(k1.localIndex).keypair != k1 {
		t.Fatal("the initiator's session is not in its index table: its peer's packets would be dropped")
	}
}

// Both sides initiate at once (both have something to send, or a persistent
// keepalive, when the peer is configured). d2 consumes d1's answer to its
// initiation while another handshake worker of d2 answers d1's initiation.
// That answer replaces d2's initiation, so d1's answer to it must be
// refused: upstream accepted it and began a session with local index 0, to
// which d1 then sent every packet in vain.
func TestWarrenSimultaneousInitiation(t *testing.T) {
	d1, d2, peerOf1, peerOf2 := warrenPair(t)
	init2, err := d2.CreateMessageInitiation(peerOf2)
	if err != nil {
		t.Fatal(err)
	}
	init1, err := d1.CreateMessageInitiation(peerOf1)
	if err != nil {
		t.Fatal(err)
	}
	resp1 := answer(t, d1, init2) // d1 answers d2's initiation

	// d2 checks resp1 against its initiation; before it updates its
	// state, its other worker answers d1's initiation.
	warrenTestHookResponseChecked = func() {
		warrenTestHookResponseChecked = nil
		answer(t, d2, init1)
	}
	t.Cleanup(func() { warrenTestHookResponseChecked = nil })
	if p := d2.ConsumeMessageResponse(resp1); p != nil {
		err := p.BeginSymmetricSession()
		t.Fatalf("d2 took an answer to an initiation it had replaced meanwhile (its session: err %v, local index %d)",
			err, peerOf2.keypairs.current.localIndex)
	}
	if warrenTestHookResponseChecked != nil {
		t.Fatal("the test hook did not run")
	}
	// Neither side has a confirmed session; the next handshake, after
	// REKEY_TIMEOUT, starts clean. A response to d2's new initiation is
	// taken. (d1 refuses initiations closer together than
	// HandshakeInitationRate, and timestamps as close, as replays.)
	time.Sleep(HandshakeInitationRate + 5*time.Millisecond)
	init2, err = d2.CreateMessageInitiation(peerOf2)
	if err != nil {
		t.Fatal(err)
	}
	if d2.ConsumeMessageResponse(answer(t, d1, init2)) != peerOf2 {
		t.Fatal("d2 refused the answer to its next initiation")
	}
	if err := peerOf2.BeginSymmetricSession(); err != nil {
		t.Fatal(err)
	}
	if k := peerOf2.keypairs.current; k == nil || k.localIndex == 0 || d2.indexTable.Lookup(k.localIndex).keypair != k {
		t.Fatalf("d2's session after the next handshake: %+v; want one in its index table", k)
	}
}
