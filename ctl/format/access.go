package format

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"github.com/warren-edge/warren/daemons/api"
)

// Time is a moment as warrenctl prints one in a sentence: local time, to
// the minute, with the zone ("2025-06-01 14:00 CEST").
func Time(t time.Time) string { return t.Local().Format("2006-01-02 15:04 MST") }

// Until says when t comes, seen from now: "in 12 weeks", "expired 2 days
// ago", or "never" for the zero time (a token without an expiry).
func Until(now, t time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case t.After(now):
		return "in " + strings.ToLower(units.HumanDuration(t.Sub(now)))
	}
	return "expired " + Ago(now, t)
}

// OperatorTable writes operator ls: NAME ROLE CREATED EXPIRES, by name.
func OperatorTable(w io.Writer, ops []api.Operator, now time.Time) error {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b api.Operator) int { return cmp.Compare(a.Name, b.Name) })
	rows := make([][]string, 0, len(ops))
	for _, o := range ops {
		rows = append(rows, []string{o.Name, o.Role, Ago(now, o.CreatedAt), Until(now, o.ExpiresAt)})
	}
	return WriteTable(w, []string{"NAME", "ROLE", "CREATED", "EXPIRES"}, rows)
}

// JoinTokenTable writes join-token ls: ID KIND CREATED EXPIRES, by kind,
// oldest first. It never shows a secret: the cluster does not have them.
func JoinTokenTable(w io.Writer, tokens []api.JoinTokenInfo, now time.Time) error {
	tokens = slices.Clone(tokens)
	slices.SortStableFunc(tokens, func(a, b api.JoinTokenInfo) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	rows := make([][]string, 0, len(tokens))
	for _, t := range tokens {
		rows = append(rows, []string{t.ID, t.Kind, Ago(now, t.CreatedAt), Until(now, t.ExpiresAt)})
	}
	return WriteTable(w, []string{"ID", "KIND", "CREATED", "EXPIRES"}, rows)
}

// KeysTable prints the data keys (warrenctl cluster keys) and a line on
// autolock, the rotation and this manager's lock.
func KeysTable(w io.Writer, info *api.KeysInfo) error {
	rows := make([][]string, 0, len(info.Keys))
	for _, k := range info.Keys {
		active := ""
		if k.ID == info.Active {
			active = "*"
		}
		rows = append(rows, []string{k.ID + active, k.CreatedAt.UTC().Format(time.DateTime), strconv.Itoa(k.Values)})
	}
	if err := WriteTable(w, []string{"DATA KEY", "CREATED", "VALUES"}, rows); err != nil {
		return err
	}
	on := map[bool]string{true: "on", false: "off"}
	fmt.Fprintf(w, "\nAutolock: %s. Rotation under way: %s.", on[info.Autolock], map[bool]string{true: "yes", false: "no"}[info.Rotating])
	if info.Clear > 0 {
		fmt.Fprintf(w, " %d values still in the clear (the leader seals them).", info.Clear)
	}
	if info.Locked {
		fmt.Fprint(w, " This manager is locked: warrenctl unlock.")
	}
	_, err := fmt.Fprintln(w)
	return err
}
