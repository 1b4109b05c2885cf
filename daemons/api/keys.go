package api

import "time"

// Encryption at rest: what the key endpoints answer (the values
// themselves never leave a manager).

// UnlockRequest is the body of POST /v1/unlock.
type UnlockRequest struct {
	Key string `json:"key"`
}

// UnlockKeyInfo answers GET /v1/unlock-key, POST /v1/unlock-key/rotate
// and PUT /v1/autolock: Key is the unlock key, shown to an admin.
type UnlockKeyInfo struct {
	Autolock bool   `json:"autolock" yaml:"autolock"`
	Key      string `json:"key,omitempty" yaml:"key,omitempty"`
}

// KeysInfo answers GET /v1/keys: the cluster's data keys and what this
// manager can do with them.
type KeysInfo struct {
	// Locked: the manager answering has no KEK (autolock, until unlocked).
	Locked   bool      `json:"locked" yaml:"locked"`
	Autolock bool      `json:"autolock" yaml:"autolock"`
	Active   string    `json:"active" yaml:"active"`
	Keys     []DataKey `json:"keys" yaml:"keys"`
	// Rotating: a data key rotation is under way (values are sealed again
	// under Active; the old keys go when none is left under them).
	Rotating bool `json:"rotating,omitempty" yaml:"rotating,omitempty"`
	// Clear counts values still kept in the clear (a cluster made before
	// encryption at rest, until its leader seals them).
	Clear int `json:"clear,omitempty" yaml:"clear,omitempty"`
}

// DataKey is one data key and how many values are sealed under it.
type DataKey struct {
	ID        string    `json:"id" yaml:"id"`
	CreatedAt time.Time `json:"createdAt" yaml:"createdAt"`
	Values    int       `json:"values" yaml:"values"`
}

// KeyCheck answers GET /v1/keys/check: every sealed value, opened.
type KeyCheck struct {
	Checked    int             `json:"checked" yaml:"checked"`
	Readable   int             `json:"readable" yaml:"readable"`
	Active     string          `json:"active" yaml:"active"`
	Unreadable []UnreadableKey `json:"unreadable,omitempty" yaml:"unreadable,omitempty"`
	// NotActive counts readable values not under the active key yet.
	NotActive int `json:"notActive,omitempty" yaml:"notActive,omitempty"`
}

// UnreadableKey is a value that did not open.
type UnreadableKey struct {
	Place string `json:"place" yaml:"place"`
	Key   string `json:"key" yaml:"key"`
	Error string `json:"error" yaml:"error"`
}
