package link

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
)

// SandboxIfname is the interface name of a sandbox's end of its veth pair,
// inside the sandbox's namespace.
const SandboxIfname = "eth0"

// VethName returns the name of the host end of sandbox id's veth pair:
// "wv" and 13 hex digits of the id's SHA-256 (15 bytes, the kernel's limit).
// Ids are often long container ids, so they cannot be used as they are.
func VethName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "wv" + hex.EncodeToString(sum[:])[:13]
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// checkID checks that id can name a sandbox: it becomes a file name.
func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("sandbox id %q: want 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}

// CheckIfname checks that name can be a Linux interface name.
func CheckIfname(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || r == '/' || r == ':' || r == '"' {
			return fmt.Errorf("interface name %q contains %q", name, r)
		}
	}
	return nil
}
