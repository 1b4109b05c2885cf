package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
)

// outputFlag is -o for listings and inspect.
type outputFlag struct {
	value   string
	allowed []string
}

func addOutputFlag(cmd *cobra.Command, o *outputFlag, def string, allowed ...string) {
	o.allowed = allowed
	cmd.Flags().StringVarP(&o.value, "output", "o", def, "output format: "+strings.Join(allowed, ", "))
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
}

func (o *outputFlag) check(cmd *cobra.Command) error {
	if !slices.Contains(o.allowed, o.value) {
		return usagef(cmd, "-o %s: use %s", o.value, strings.Join(o.allowed, ", "))
	}
	return nil
}

// encode writes v as JSON or YAML when -o asks for it; ok is false for a table.
func (o *outputFlag) encode(w io.Writer, v any) (ok bool, err error) {
	if o.value == format.Table {
		return false, nil
	}
	return true, format.Encode(w, o.value, v)
}

// multiError gathers the failures of a command that acts on several
// objects and goes on after one fails, as docker's rm does.
type multiError []error

func (m multiError) Error() string {
	msgs := make([]string, len(m))
	for i, e := range m {
		msgs[i] = errorText(e)
	}
	return strings.Join(msgs, "\nwarrenctl: ")
}

func (m multiError) err() error {
	switch len(m) {
	case 0:
		return nil
	case 1:
		return m[0]
	}
	return m
}

// listed prints a listing the ways every ls command shares: with quiet,
// only each item's key, one a line; in the chosen encoding; otherwise
// done is false and the caller prints its table. A nil list encodes as
// an empty one ([]), not null.
func listed[T any](w io.Writer, o *outputFlag, items []T, quiet bool, key func(T) string) (done bool, err error) {
	if items == nil {
		items = []T{}
	}
	if quiet {
		for _, it := range items {
			fmt.Fprintln(w, key(it))
		}
		return true, nil
	}
	return o.encode(w, items)
}
