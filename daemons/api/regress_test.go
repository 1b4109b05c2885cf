package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// Regression tests for bugs the fuzzing and probing of the validation found.

func TestHostilePortListIsCheap(t *testing.T) {
	s := ServiceSpec{Name: "web", Image: "busybox"}
	for range 4000 {
		s.Ports = append(s.Ports, PortConfig{Target: 1})
	}
	err := ValidateServiceSpec(&s)
	e, ok := err.(*Error)
	if !ok || len(e.Fields) > maxFieldErrs || !strings.Contains(e.Error(), "the limit is 256") {
		t.Fatalf("ValidateServiceSpec(4000 equal ports) = %d fields, %v; want the port limit and at most %d fields", len(e.Fields), err, maxFieldErrs)
	}
	s.Ports = s.Ports[:200]
	e = ValidateServiceSpec(&s).(*Error)
	if len(e.Fields) > maxFieldErrs {
		t.Errorf("200 clashing ports gave %d fields, want at most %d", len(e.Fields), maxFieldErrs)
	}
}

func TestNumbersThatAreNotSizesOrCPUs(t *testing.T) {
	for _, in := range []string{"1e300", "9000P", "1.9", "nan", "-inf"} {
		if _, err := ParseBytes(in); err == nil && in != "-inf" {
			t.Errorf("ParseBytes(%q) accepted it", in)
		}
	}
	for _, in := range []string{"nan", "inf", "-1", "1e7"} {
		if _, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) accepted it", in)
		}
	}
	var r ResourceAmounts
	if err := json.Unmarshal([]byte(`{"cpus": null, "memory": null}`), &r); err != nil || r.NanoCPUs != 0 {
		t.Errorf("null cpus and memory = %+v, %v; want zero", r, err)
	}
}

func TestLabelErrorsInAStableOrder(t *testing.T) {
	s := ServiceSpec{Name: "web", Image: "busybox", Labels: map[string]string{"-a": "", "-b": "", "-c": "", "-d": ""}}
	first := ValidateServiceSpec(&s).Error()
	for range 20 {
		if got := ValidateServiceSpec(&s).Error(); got != first {
			t.Fatalf("label errors changed order:\n%s\nthen\n%s", first, got)
		}
	}
}
