package opts

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// envKeyRe is the rule api.ValidateServiceSpec applies to variable names.
var envKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// ParseEnv reads an --env value. "KEY=VALUE" is taken as written. A bare
// "KEY" takes the variable's value from warrenctl's own environment, as
// docker does; ok is false when lookup does not know it (docker then
// leaves the variable out).
func ParseEnv(s string, lookup func(string) (string, bool)) (kv string, ok bool, err error) {
	key, val, hasVal := strings.Cut(s, "=")
	if !envKeyRe.MatchString(key) {
		return "", false, fmt.Errorf("env %q: %q is not a variable name: use letters, digits and '_', not starting with a digit, e.g. -e LOG_LEVEL=debug", s, key)
	}
	if strings.ContainsRune(val, 0) {
		return "", false, fmt.Errorf("env %q: the value holds a NUL byte", key)
	}
	if hasVal {
		return key + "=" + val, true, nil
	}
	if lookup == nil {
		return "", false, nil
	}
	if v, found := lookup(key); found {
		return key + "=" + v, true, nil
	}
	return "", false, nil
}

// EnvKey returns the name of a "KEY=VALUE" variable.
func EnvKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

// SetEnv sets variables in env: a variable already there keeps its place
// and takes the new value; new ones are appended.
func SetEnv(env []string, add ...string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		k := EnvKey(kv)
		replaced := false
		for i := range out {
			if EnvKey(out[i]) == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// RemoveEnv drops the variables named by keys ("KEY" or "KEY=...").
func RemoveEnv(env []string, keys ...string) []string {
	drop := map[string]bool{}
	for _, k := range keys {
		drop[EnvKey(k)] = true
	}
	var out []string
	for _, kv := range env {
		if !drop[EnvKey(kv)] {
			out = append(out, kv)
		}
	}
	return out
}

// ParseLabel reads "KEY=VALUE" or "KEY" (an empty value), as docker's
// --label does.
func ParseLabel(s string) (key, val string, err error) {
	key, val, _ = strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if key == "" {
		return "", "", fmt.Errorf("label %q has no key: use KEY=VALUE, e.g. --label tier=web", s)
	}
	return key, val, nil
}

// ParseConstraint checks a --constraint expression and returns it in its
// canonical form ("node.labels.zone == east" becomes "node.labels.zone==east").
func ParseConstraint(s string) (string, error) {
	c, err := api.ParseConstraint(s)
	if err != nil {
		return "", fmt.Errorf("constraint %v", err)
	}
	return c.String(), nil
}

// ParseMemory reads a size such as "64M", "1.5G" or "1048576" (bytes).
func ParseMemory(s string) (api.Bytes, error) {
	n, err := api.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid size %q: a size cannot be negative", s)
	}
	return api.Bytes(n), nil
}

// ParseCPUs reads a CPU count such as "0.5" or "2".
func ParseCPUs(s string) (api.CPUs, error) {
	n, err := api.ParseCPUs(s)
	return api.CPUs(n), err
}

// ParseScale reads a "SERVICE=REPLICAS" argument of service scale.
func ParseScale(s string) (service string, replicas uint64, err error) {
	service, n, ok := strings.Cut(s, "=")
	if !ok || service == "" {
		return "", 0, fmt.Errorf("%q is not SERVICE=REPLICAS, e.g. web=3", s)
	}
	replicas, err = strconv.ParseUint(n, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %q is not a number of replicas, e.g. web=3", s, n)
	}
	if replicas > api.MaxReplicas {
		return "", 0, fmt.Errorf("%q: %d replicas is more than the limit of %d", s, replicas, api.MaxReplicas)
	}
	return service, replicas, nil
}

// SplitWords splits a command line the way a POSIX shell would, without
// expansion: words separated by blanks, 'single' and "double" quotes, and
// backslash escapes. docker splits --entrypoint and --args this way.
func SplitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%q ends with a lone backslash", s)
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%q has an unterminated ' quote", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q has an unterminated \" quote", s)
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
