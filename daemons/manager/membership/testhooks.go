package membership

// Hooks for tests of other packages (the manager's, qa): they shorten
// what production waits for.

import "time"

// SetCertTTLForTest shortens node certificates, to see them renewed.
func SetCertTTLForTest(d time.Duration) func() {
	old := nodeCertTTL
	nodeCertTTL = d
	return func() { nodeCertTTL = old }
}

// SetCAPollForTest makes workers look at the CA more often.
func SetCAPollForTest(d time.Duration) func() {
	old := workerCAPoll
	workerCAPoll = d
	return func() { workerCAPoll = old }
}

// SetNodePortLimitsForTest shortens the TLS handshake's deadline and
// lowers the connections one address may hold (node ports opened after).
func SetNodePortLimitsForTest(handshake time.Duration, perHost int) func() {
	oldH, oldP := handshakeTimeout, maxConnsPerHost
	handshakeTimeout, maxConnsPerHost = handshake, perHost
	return func() { handshakeTimeout, maxConnsPerHost = oldH, oldP }
}

// SetHandshakeRateForTest lets each address start burst handshakes at
// once on node ports opened from now on, then one per every.
func SetHandshakeRateForTest(burst int, every time.Duration) func() {
	oldB, oldE := handshakeBurst, handshakeEvery
	handshakeBurst, handshakeEvery = burst, every
	return func() { handshakeBurst, handshakeEvery = oldB, oldE }
}

// SetRenewRetryForTest makes a worker whose renewal failed try again
// within d.
func SetRenewRetryForTest(d time.Duration) func() {
	old := renewRetryMax
	renewRetryMax = d
	return func() { renewRetryMax = old }
}

// resealHook, if set, is asked before each reseal command the leader
// proposes; false skips it (a test stops a rotation part-way).
var resealHook func() bool

// SetResealHookForTest sets resealHook.
func SetResealHookForTest(h func() bool) func() {
	old := resealHook
	resealHook = h
	return func() { resealHook = old }
}
