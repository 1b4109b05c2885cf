package api

import "time"

// Operator is a person (or a daemon) allowed on the node port with an
// operator certificate, and what they may do: admin (everything), operator
// (services and nodes, not the CA, tokens or operators) or viewer (read).
// The cluster keeps the record; removing it revokes the certificate at
// once, on every manager.
type Operator struct {
	Name      string    `json:"name" yaml:"name"`
	Role      string    `json:"role" yaml:"role"`
	CreatedAt time.Time `json:"createdAt" yaml:"createdAt"`
	// ExpiresAt is when the last certificate issued under the name
	// expires: a removed operator's name stays denied until then.
	ExpiresAt time.Time `json:"expiresAt" yaml:"expiresAt"`
}

// OperatorRequest is the body of POST /v1/operators: a certificate request
// for a key the operator keeps, and the role to grant.
type OperatorRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	CSR  []byte `json:"csr"` // DER, base64 in JSON
	// TTL is how long the certificate lasts (default 90 days).
	TTL Duration `json:"ttl,omitempty"`
}

// OperatorResponse carries an operator's certificate and the cluster's
// trust bundle, and the managers' node ports to reach.
type OperatorResponse struct {
	Operator  Operator `json:"operator"`
	CertPEM   string   `json:"cert"`
	BundlePEM string   `json:"bundle"`
	Managers  []string `json:"managers,omitempty"`
}
