package api

import (
	"crypto/rand"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	json "github.com/segmentio/encoding/json"
	"gopkg.in/yaml.v3"
)

// Meta is carried by every stored object.
type Meta struct {
	ID string `json:"id" yaml:"id"`
	// Version is the Raft index of the object's last change.
	Version   uint64    `json:"version" yaml:"version"`
	CreatedAt time.Time `json:"createdAt" yaml:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt" yaml:"updatedAt"`
}

// NewID returns a random object ID: 25 characters of lower-case base36,
// like Docker Swarm's, so that a 12-character prefix is unique in practice.
func NewID() string {
	var b [IDLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("api: no randomness: " + err.Error())
	}
	for i := range b {
		b[i] = IDAlphabet[int(b[i])%len(IDAlphabet)]
	}
	return string(b[:])
}

// Duration is a time.Duration written as "10s" in JSON and YAML. It also
// accepts a number of nanoseconds in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.parse(s)
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string like \"10s\" or a number of nanoseconds")
	}
	*d = Duration(n)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a string like \"10s\"", n.Line)
	}
	if err := d.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (d *Duration) parse(s string) error {
	if s == "" || s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, like 500ms, 10s or 5m", s)
	}
	*d = Duration(v)
	return nil
}

// Bytes is a size in bytes. JSON and YAML accept a number or a string with a
// unit ("64M", "1.5G", binary multiples as docker does); it is written as a
// number.
type Bytes int64

func (b *Bytes) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		return b.parse(s)
	}
	var n int64
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("size must be a number of bytes or a string like \"64M\"")
	}
	*b = Bytes(n)
	return nil
}

func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: size must be a number or a string like \"64M\"", n.Line)
	}
	if err := b.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (b *Bytes) parse(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(v)
	return nil
}

// ParseBytes reads a size such as "64M", "512k", "1G" or "1048576".
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil // a negative one is refused by validation, naming the field
	}
	bad := fmt.Errorf("invalid size %q: use a number of bytes or a unit like 64M or 1G", s)
	// A fraction needs a unit ("1.5G"); a bare one ("1.9") is a mistake.
	if strings.IndexFunc(s, func(r rune) bool { return r >= 'A' && r <= 'z' }) < 0 {
		return 0, bad
	}
	v, err := units.RAMInBytes(s)
	if err != nil || v < 0 || v > maxBytes {
		return 0, bad
	}
	return v, nil
}

// maxBytes bounds a size: 1 PiB (and no overflow).
const maxBytes = 1 << 50

// FormatBytes writes a size the way ParseBytes reads it, e.g. "64MiB".
func FormatBytes(n int64) string {
	if n == 0 {
		return "0"
	}
	return units.BytesSize(float64(n))
}

// CPUs is a number of CPUs, stored as nano-CPUs (1e-9 CPU). JSON and YAML
// read and write it as a CPU count: 0.5 or "0.5".
type CPUs int64

func (c CPUs) MarshalJSON() ([]byte, error) { return []byte(FormatCPUs(int64(c))), nil }

func (c *CPUs) UnmarshalJSON(data []byte) error {
	s := string(data)
	if s == "null" {
		*c = 0
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
	}
	v, err := ParseCPUs(s)
	if err != nil {
		return err
	}
	*c = CPUs(v)
	return nil
}

func (c CPUs) MarshalYAML() (any, error) { return float64(c) / 1e9, nil }

func (c *CPUs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: cpus must be a number like 0.5", n.Line)
	}
	v, err := ParseCPUs(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*c = CPUs(v)
	return nil
}

// ParseCPUs reads a CPU count such as "0.5" or "2" into nano-CPUs.
func ParseCPUs(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1e6) { // also NaN and infinities
		return 0, fmt.Errorf("invalid CPU count %q: use a number like 0.5 or 2", s)
	}
	return int64(math.Round(f * 1e9)), nil
}

// FormatCPUs writes nano-CPUs as a decimal CPU count.
func FormatCPUs(n int64) string {
	return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
}
