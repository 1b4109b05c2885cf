package api

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Secrets and configs are named, versioned blobs that services mount as
// files in their tasks. A secret's value is sealed (AES-256-GCM) by the
// manager that receives it, before it reaches Raft, and goes only to the
// nodes that run a task that uses it; a config's data is kept in the
// clear. Neither object carries its value: it is fetched on its own route
// (by a node, for its task) and, for configs only, shown on request.

// Kinds of the objects (watch events, errors).
const (
	KindSecret = "secret"
	KindConfig = "config"
)

// Bounds of secrets and configs.
const (
	// MaxSecretSize is the largest value of a secret or config, as in
	// Docker Swarm.
	MaxSecretSize = 500 << 10
	// MaxSecretNameLen bounds a secret's or config's name.
	MaxSecretNameLen = 64
	// MaxFileRefs bounds the secrets and the configs of one service.
	MaxFileRefs = 64
	// SecretsDir is where a secret's file goes in a task by default, and
	// what a relative target is under.
	SecretsDir = "/run/secrets"
	// DefaultFileMode is the mode of a secret's or config's file unless
	// the reference says otherwise (Docker Swarm's default).
	DefaultFileMode FileMode = 0o444
)

// Secret is a secret as the API shows it: never its value, nor a hash of
// it (a hash of a short password is guessed offline).
type Secret struct {
	Meta     `yaml:",inline"`
	Spec     SecretSpec      `json:"spec" yaml:"spec"`
	Versions []SecretVersion `json:"versions" yaml:"versions"`
	// Services that use it, by name: filled in on reads of one secret.
	Services []string `json:"services,omitempty" yaml:"services,omitempty"`
}

// SecretSpec is what an operator names a secret or config with.
type SecretSpec struct {
	Name   string            `json:"name" yaml:"name"`
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// SecretVersion is one value a secret or config has had: secret update
// makes a new one in place, and the old goes once no task uses it.
type SecretVersion struct {
	Version   uint64    `json:"version" yaml:"version"`
	CreatedAt time.Time `json:"createdAt" yaml:"createdAt"`
	Size      int       `json:"size" yaml:"size"`
	// Tasks that hold this version (and are not ended), by name: filled
	// in on reads of one secret.
	Tasks []string `json:"tasks,omitempty" yaml:"tasks,omitempty"`
	// Data is a config version's data, on reads that ask for it (?data);
	// never set for a secret.
	Data []byte `json:"data,omitempty" yaml:"data,omitempty"`
}

// Latest is the newest version (the zero version if there is none).
func (s *Secret) Latest() SecretVersion {
	if len(s.Versions) == 0 {
		return SecretVersion{}
	}
	return s.Versions[len(s.Versions)-1]
}

// HasVersion says whether version v is still kept.
func (s *Secret) HasVersion(v uint64) bool {
	return slices.ContainsFunc(s.Versions, func(x SecretVersion) bool { return x.Version == v })
}

// SecretRequest creates a secret or config (name, labels, data) or gives
// one a new version (data only).
type SecretRequest struct {
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Data   []byte            `json:"data"`
}

// String never shows the data.
func (r SecretRequest) String() string {
	return fmt.Sprintf("{%s %v [redacted]}", r.Name, r.Labels)
}

// SecretValue is a secret's or config's value, as a node fetches it for
// its task.
type SecretValue struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Data    []byte `json:"data"`
}

// Format prints the value's identity only, whatever the verb.
func (v SecretValue) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{%s/%d [redacted]}", v.ID, v.Version)
}

// SecretAAD is the place a secret's version is sealed at: its sealed
// value opens there only, so it cannot be moved to another secret or
// version.
func SecretAAD(id string, version uint64) string {
	return "secret/" + id + "/" + strconv.FormatUint(version, 10)
}

var secretNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)

// ValidateSecretName checks a secret's or config's name (kind says which,
// for the message): letters, digits, '_', '.' and '-', starting and
// ending with a letter or digit, as Docker Swarm's.
func ValidateSecretName(kind, name string) error {
	switch {
	case name == "":
		return Errorf(CodeInvalid, "a %s needs a name", kind)
	case len(name) > MaxSecretNameLen:
		return Errorf(CodeInvalid, "%s name %.20q... is %d characters long; the limit is %d", kind, name, len(name), MaxSecretNameLen)
	case !secretNameRe.MatchString(name):
		return Errorf(CodeInvalid, "%s name %q is not valid: use letters, digits, '_', '.' and '-', starting and ending with a letter or digit", kind, name)
	}
	return nil
}

// ValidateSecretRequest checks a create (create set: a name) or an update
// of a secret or config.
func ValidateSecretRequest(kind string, r *SecretRequest, create bool) error {
	if create {
		if err := ValidateSecretName(kind, r.Name); err != nil {
			return err
		}
		var fe fieldErrs
		validateLabels(&fe, "labels", r.Labels)
		if err := fe.err(kind); err != nil {
			return err
		}
	}
	return ValidateSecretData(kind, len(r.Data))
}

// ValidateSecretData checks a value's size: not empty, at most
// MaxSecretSize.
func ValidateSecretData(kind string, n int) error {
	switch {
	case n == 0:
		return Errorf(CodeInvalid, "the %s's data is empty: give a file with the value, or - to read it from standard input", kind)
	case n > MaxSecretSize:
		return Errorf(CodeInvalid, "the %s's data is %d bytes; the limit is %d (500 KiB)", kind, n, MaxSecretSize)
	}
	return nil
}

// FileMode is a file's permission bits, written in octal ("0400").
type FileMode uint32

func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// ParseFileMode reads an octal mode such as 0400 or 400.
func ParseFileMode(s string) (FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("mode %q is not a file mode: give octal permission bits up to 0777, e.g. 0400", s)
	}
	return FileMode(n), nil
}

// FileRef mounts a secret or config as a file in a service's tasks.
// Name, Target, UID, GID and Mode are the operator's; ID and Version are
// the manager's: it pins the version the tasks get (the newest when the
// spec is written), and moves the pin when the secret gets a new version,
// which rolls the service's tasks under its update config.
type FileRef struct {
	Name   string   `json:"name" yaml:"name"`
	Target string   `json:"target,omitempty" yaml:"target,omitempty"`
	UID    uint32   `json:"uid,omitempty" yaml:"uid,omitempty"`
	GID    uint32   `json:"gid,omitempty" yaml:"gid,omitempty"`
	Mode   FileMode `json:"mode,omitempty" yaml:"mode,omitempty"`
	// ID and Version are set by the manager.
	ID      string `json:"id,omitempty" yaml:"id,omitempty"`
	Version uint64 `json:"version,omitempty" yaml:"version,omitempty"`
}

// normalizeFileRef fills in a reference's defaults: a secret's target is
// /run/secrets/NAME (a relative one is under /run/secrets), a config's
// /NAME; the mode is DefaultFileMode.
func normalizeFileRef(kind string, r *FileRef) {
	t := r.Target
	switch {
	case t == "" && kind == KindSecret:
		t = path.Join(SecretsDir, r.Name)
	case t == "":
		t = "/" + r.Name
	case !path.IsAbs(t) && kind == KindSecret:
		t = path.Join(SecretsDir, t)
	}
	if t != "" && !strings.ContainsRune(t, 0) {
		t = path.Clean(t)
	}
	r.Target = t
	if r.Mode == 0 {
		r.Mode = DefaultFileMode
	}
}

// validateFileRefs checks a spec's secrets and configs: names, absolute
// targets (a config's relative target has no default directory), modes,
// and no two files at one target.
func validateFileRefs(fe *fieldErrs, s *ServiceSpec) {
	targets := map[string]string{}
	for _, l := range []struct {
		kind, field string
		refs        []FileRef
	}{{KindSecret, "secrets", s.Secrets}, {KindConfig, "configs", s.Configs}} {
		if len(l.refs) > MaxFileRefs {
			fe.add(l.field, "%d %ss; the limit is %d", len(l.refs), l.kind, MaxFileRefs)
			continue
		}
		for i, r := range l.refs {
			field := fmt.Sprintf("%s[%d]", l.field, i)
			if err := ValidateSecretName(l.kind, r.Name); err != nil {
				fe.add(field+".name", "%s", err.(*Error).Message)
			}
			switch {
			case !path.IsAbs(r.Target) || strings.ContainsRune(r.Target, 0) || r.Target == "/":
				fe.add(field+".target", "%q must be an absolute path to a file (a %s's relative target is not allowed)", r.Target, l.kind)
			case targets[r.Target] != "":
				fe.add(field+".target", "%s is also the target of %s: each file needs its own target", r.Target, targets[r.Target])
			default:
				targets[r.Target] = l.kind + " " + r.Name
			}
			if r.Mode > 0o777 {
				fe.add(field+".mode", "%s is not a file mode: give permission bits up to 0777", r.Mode)
			}
			if r.ID != "" {
				if err := ValidateID(r.ID); err != nil {
					fe.add(field+".id", "%s", err.(*Error).Message)
				}
			}
		}
	}
}

// CarryPins copies the manager's pins (ID and version) of each secret and
// config of spec that stored (the spec as stored) has under the same
// name: a spec written by hand (a manifest, flags) then compares equal to
// the stored one when nothing else changed.
func CarryPins(spec, stored *ServiceSpec) {
	carry := func(dst, src []FileRef) {
		for i := range dst {
			if dst[i].ID != "" {
				continue
			}
			for _, s := range src {
				if s.Name == dst[i].Name {
					dst[i].ID, dst[i].Version = s.ID, s.Version
					break
				}
			}
		}
	}
	carry(spec.Secrets, stored.Secrets)
	carry(spec.Configs, stored.Configs)
}

// UsesVersion says whether spec pins version v of the secret or config id.
func (s *ServiceSpec) UsesVersion(kind, id string, v uint64) bool {
	for _, r := range s.FileRefs(kind) {
		if r.ID == id && (v == 0 || r.Version == v) {
			return true
		}
	}
	return false
}

// FileRefs is the spec's secrets (kind KindSecret) or configs.
func (s *ServiceSpec) FileRefs(kind string) []FileRef {
	if kind == KindSecret {
		return s.Secrets
	}
	return s.Configs
}
