package format

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// SecretTable writes secret ls and config ls: ID NAME VERSION CREATED
// UPDATED, by name. A secret's value is never shown: the API has none.
func SecretTable(w io.Writer, items []api.Secret, now time.Time) error {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b api.Secret) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	rows := make([][]string, 0, len(items))
	for _, s := range items {
		rows = append(rows, []string{ShortID(s.ID), s.Spec.Name, fmt.Sprint(s.Latest().Version), Ago(now, s.CreatedAt), Ago(now, s.UpdatedAt)})
	}
	return WriteTable(w, []string{"ID", "NAME", "VERSION", "CREATED", "UPDATED"}, rows)
}

// SecretPretty writes secret inspect --pretty (and config inspect
// --pretty): the object, the services that use it, and each version with
// the tasks that hold it; for a config, the data of each version given.
func SecretPretty(w io.Writer, kind string, s *api.Secret, now time.Time) error {
	fmt.Fprintf(w, "ID:\t\t%s\nName:\t\t%s\n", s.ID, s.Spec.Name)
	for _, k := range slices.Sorted(maps.Keys(s.Spec.Labels)) {
		fmt.Fprintf(w, "Label:\t\t%s=%s\n", k, s.Spec.Labels[k])
	}
	fmt.Fprintf(w, "Created:\t%s\nUpdated:\t%s\n", Ago(now, s.CreatedAt), Ago(now, s.UpdatedAt))
	used := "no service"
	if len(s.Services) > 0 {
		used = strings.Join(s.Services, ", ")
	}
	fmt.Fprintf(w, "Used by:\t%s\nVersions:\n", used)
	for _, v := range s.Versions {
		tasks := "no task"
		if len(v.Tasks) > 0 {
			tasks = strings.Join(v.Tasks, ", ")
		}
		fmt.Fprintf(w, "  %d\t%d bytes, created %s; held by %s\n", v.Version, v.Size, Ago(now, v.CreatedAt), tasks)
		if kind == api.KindConfig && v.Data != nil {
			fmt.Fprintf(w, "  data:\n%s\n", Sanitize(string(v.Data), true))
		}
	}
	return nil
}
