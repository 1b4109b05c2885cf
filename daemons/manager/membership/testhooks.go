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
