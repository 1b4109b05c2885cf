package manager

import "time"

// SetCertTTLForTest shortens node certificates, to see them renewed.
func SetCertTTLForTest(d time.Duration) func() {
	old := nodeCertTTL
	nodeCertTTL = d
	return func() { nodeCertTTL = old }
}
