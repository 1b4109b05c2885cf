package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestValidateID(t *testing.T) {
	good := "kq7wn1p5hsd3xv0o1f2z9ab4c"
	cases := []struct {
		id  string
		why string // "" for a valid ID; else what the message must say
	}{
		{good, ""},
		{"0123456789abcdefghijklmno", ""},
		{"", "it is empty"},
		{"..", "it holds '..'"},
		{"../../secret", "it holds '/'"},
		{"..%2Fsecret", "it holds '..'"},
		{"/etc/passwd", "it holds '/'"},
		{good[:24] + "/", "it holds '/'"},
		{"a..b" + good[4:], "it holds '..'"},
		{good[:24], "it is 24 characters long"},
		{good + "a", "it is 26 characters long"},
		{strings.ToUpper(good), "it holds 'K'"},
		{good[:24] + ".", "it holds '.'"},
		{good[:24] + "-", "it holds '-'"},
		{good[:24] + "%", "it holds '%'"},
		{good[:24] + "\x00", `it holds '\x00'`},
		{good[:24] + "\n", `it holds '\n'`},
		{good[:23] + "é", `it holds 'é'`},
		{good[:24] + "\xff", `it holds '�'`},
		{strings.Repeat("a", 10000), "it is 10000 characters long"},
	}
	for _, c := range cases {
		err := api.ValidateID(c.id)
		call := fmt.Sprintf("ValidateID(%.40q)", c.id)
		if c.why == "" {
			if err != nil {
				t.Errorf("%s = %v, want nil", call, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s = nil, want an error saying %q", call, c.why)
			continue
		}
		if !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("%s = %T %v, want an *api.Error with code %q", call, err, err, api.CodeInvalid)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.why) || !strings.Contains(msg, "25 characters of 0-9 and a-z") {
			t.Errorf("%s = %q, want it to say %q and what an ID is", call, msg, c.why)
		}
		if len(msg) > 300 {
			t.Errorf("%s is %d bytes long: a hostile ID must not make a huge error", call, len(msg))
		}
		checkMessage(t, call, "error", msg)
	}
}

// TestNewIDIsValid ties ValidateID to what NewID makes.
func TestNewIDIsValid(t *testing.T) {
	for range 10000 {
		if id := api.NewID(); api.ValidateID(id) != nil {
			t.Fatalf("ValidateID(NewID() = %q) = %v, want nil", id, api.ValidateID(id))
		}
	}
}
