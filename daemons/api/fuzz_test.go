package api_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	json "github.com/segmentio/encoding/json"
	"gopkg.in/yaml.v3"

	"github.com/warren-edge/warren/daemons/api"
)

// FuzzDecodeServiceSpec decodes bytes as the API does (JSON, unknown fields
// refused) and validates the spec. Whatever the input: nothing panics,
// validation is deterministic and does not change the spec, and a spec that
// validates survives a JSON and a YAML round trip unchanged and still
// validates. The seed corpus is testdata/fuzz/FuzzDecodeServiceSpec; it runs
// in every go test.
func FuzzDecodeServiceSpec(f *testing.F) {
	f.Add([]byte(fullSpecJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeJSON(data)
		if err != nil {
			return
		}
		before, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("json.Marshal(decoded spec %+v) = %v", s, err)
		}
		err1 := api.ValidateServiceSpec(&s)
		err2 := api.ValidateServiceSpec(&s)
		if after, _ := json.Marshal(&s); string(after) != string(before) {
			t.Fatalf("ValidateServiceSpec changed the spec:\n%s\n%s", before, after)
		}
		f1, f2 := errFields(t, err1), errFields(t, err2)
		if (err1 == nil) != (err2 == nil) || !slices.Equal(f1, f2) {
			t.Fatalf("ValidateServiceSpec(%s) is not deterministic: %v, then %v", before, err1, err2)
		}
		if err1 != nil {
			return
		}

		out, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("json.Marshal(valid spec) = %v", err)
		}
		back, err := decodeJSON(out)
		if err != nil {
			t.Fatalf("valid spec %s, re-encoded as %s, does not decode: %v", data, out, err)
		}
		if !api.SpecEqual(&s, &back) {
			t.Fatalf("valid spec changed in a JSON round trip:\nin:    %s\nfirst: %s\nagain: %s", data, out, mustJSON(&back))
		}
		if err := api.ValidateServiceSpec(&back); err != nil {
			t.Fatalf("valid spec %s no longer validates after a JSON round trip: %v", out, err)
		}

		y, err := yaml.Marshal(&s)
		if err != nil {
			t.Fatalf("yaml.Marshal(valid spec %s) = %v", out, err)
		}
		var fromYAML api.ServiceSpec
		if err := yaml.Unmarshal(y, &fromYAML); err != nil {
			t.Fatalf("valid spec %s, written as YAML\n%s\ndoes not read back: %v", out, y, err)
		}
		if !api.SpecEqual(&s, &fromYAML) {
			t.Fatalf("valid spec changed in a YAML round trip:\nin:   %s\nyaml:\n%s\nback: %s", out, y, mustJSON(&fromYAML))
		}
	})
}

// errFields returns the sorted fields a validation error names; an error
// that is not an *api.Error naming fields fails the test.
func errFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *api.Error
	if !errors.As(err, &e) || e.Code != api.CodeInvalid || len(e.Fields) == 0 {
		t.Fatalf("ValidateServiceSpec = %#v, want an invalid *api.Error that names fields", err)
	}
	var out []string
	for _, f := range e.Fields {
		if f.Field == "" || f.Message == "" {
			t.Fatalf("ValidateServiceSpec returned a field error without a field or a message: %+v", f)
		}
		out = append(out, f.Field+": "+f.Message)
	}
	// The order of Fields is not compared: problems with labels come in
	// map order.
	slices.Sort(out)
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestFuzzSeeds checks that the seed corpus means what its file names say:
// good-* specs decode and validate (so the fuzz target's round trips run on
// them), bad-* do not get that far.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeServiceSpec")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var good, bad int
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
			!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s is not a go test fuzz v1 file with one []byte", e.Name())
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		s, err := decodeJSON([]byte(data))
		if err == nil {
			err = api.ValidateServiceSpec(&s)
		}
		switch {
		case strings.HasPrefix(e.Name(), "good-"):
			good++
			if err != nil {
				t.Errorf("seed %s: %v, want a valid spec", e.Name(), err)
			}
		case strings.HasPrefix(e.Name(), "bad-"):
			bad++
			if err == nil {
				t.Errorf("seed %s decodes and validates; want it refused", e.Name())
			}
		}
	}
	if good < 5 || bad < 5 {
		t.Errorf("the corpus has %d good and %d bad seeds; want at least 5 of each", good, bad)
	}
}
