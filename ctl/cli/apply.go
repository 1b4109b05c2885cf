package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/ctl/manifest"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// applyStep is what apply does with one document.
type applyStep struct {
	doc    *manifest.Document
	cur    *api.Service // nil: create
	action string       // created, configured, unchanged
}

func (s *session) applyCmd() *cobra.Command {
	var files []string
	var dryRun, wait bool
	var w waitOpts
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE...] [--wait]",
		Short: "Create or change services to match YAML files",
		Long: `Make the cluster's services match YAML files, as kubectl apply does.

Each file holds one or more documents separated by "---"; each document
is a service spec in its YAML form (the fields of "warrenctl service
inspect -o yaml" under spec:), with an optional "kind: service" line.
A document without "replicas:" gets 1, as service create gives. -f -
reads standard input; -f DIR reads DIR/*.yaml and DIR/*.yml.

Every document is read strictly (an unknown field is an error) and
checked, locally and then by the manager (a dry run), before anything
is sent: if one document is wrong, nothing is applied, and each problem
is printed as FILE:LINE: what is wrong.

Then each service is created if it does not exist, updated if its spec
differs, and left alone otherwise; one line says which:
service/NAME created, configured or unchanged. Applying the same files
twice changes nothing the second time. Services not in the files are
left alone. apply does not wait for the tasks (watch them with
warrenctl service ps) unless --wait says to: then it follows every
service it created or changed, slot by slot, as stack deploy does, and
exits non-zero if an update pauses or rolls back, or --timeout passes.

Several services are applied as one deployment: the manager changes all
of them in one step or none, and if the update of one of them fails and
rolls back (updateConfig.failureAction: rollback), the others it
updated roll back with it (and those it created, which have nothing to
roll back to, pause).`,
		Example: `  warrenctl apply -f web.yaml
  warrenctl apply -f stack/ --dry-run
  warrenctl apply -f stack/ --wait --timeout 5m
  cat web.yaml | warrenctl apply -f -

A file:

  kind: service
  name: web
  image: nginx:1.27
  replicas: 3
  ports:
    - target: 80
      published: 8080
  env: [LOG_LEVEL=info]
  resources:
    limits: {memory: 64M, cpus: 0.5}
  placement:
    constraints: [node.labels.zone==east]`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return usagef(cmd, "give the files to apply with -f FILE (-f - reads standard input)")
			}
			docs, err := s.readManifests(files)
			if err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			services, err := c.Services(ctx, client.ReadOptions{})
			if err != nil {
				return err
			}
			byName := map[string]*api.Service{}
			for i := range services {
				byName[services[i].Spec.Name] = &services[i]
			}
			// Plan, and let the manager check every change before any is made.
			var steps []applyStep
			var problems manifest.Problems
			for i := range docs {
				d := &docs[i]
				st := applyStep{doc: d, cur: byName[d.Spec.Name], action: "created"}
				if st.cur != nil {
					api.CarryPins(&d.Spec, &st.cur.Spec) // the manager's pins are not the manifest's business
				}
				var err error
				switch {
				case st.cur == nil:
					_, err = c.CreateServiceDryRun(ctx, d.Spec)
				case api.SpecEqual(&st.cur.Spec, &d.Spec):
					st.action = "unchanged"
				case format.Mode(&st.cur.Spec) != format.Mode(&d.Spec):
					problems = append(problems, manifest.Problem{File: d.File, Line: d.LineOf("mode"), Msg: fmt.Sprintf(
						"mode: service %s is %s and a service's mode cannot change: remove it (warrenctl service rm %s) and apply again",
						d.Spec.Name, format.Mode(&st.cur.Spec), d.Spec.Name)})
					continue
				default:
					st.action = "configured"
					// No version: the orchestrator may write the service
					// meanwhile; the real update names the version.
					_, err = c.UpdateServiceDryRun(ctx, st.cur.ID, d.Spec, 0)
				}
				if err != nil {
					var ae *api.Error
					if !errors.As(err, &ae) {
						return err
					}
					problems = append(problems, manifest.Problem{File: d.File, Line: d.Line, Msg: fmt.Sprintf("service %s: %s", d.Spec.Name, indent(ae.Error()))})
					continue
				}
				steps = append(steps, st)
			}
			if len(problems) > 0 {
				return nothingApplied(problems)
			}
			if !dryRun && len(steps) > 1 {
				svcs, err := s.applyDeployment(cmd, c, steps)
				if err != nil || !wait {
					return err
				}
				return s.convergeMany(ctx, svcs, w)
			}
			var errs multiError
			var changed []*api.Service
			for _, st := range steps {
				name := st.doc.Spec.Name
				if dryRun {
					fmt.Fprintf(s.out(), "service/%s %s (dry run)\n", name, st.action)
					if st.action == "configured" {
						fmt.Fprint(s.out(), indent2(format.SpecDiff(&st.cur.Spec, &st.doc.Spec)))
					}
					continue
				}
				action, svc, err := s.applyOne(cmd, c, st)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: service %s: %w", st.doc.Where(), name, err))
					continue
				}
				fmt.Fprintf(s.out(), "service/%s %s\n", name, action)
				if svc != nil {
					changed = append(changed, svc)
				}
			}
			if wait && len(errs) == 0 {
				return s.convergeMany(ctx, changed, w)
			}
			return errs.err()
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "a YAML file, a directory of them, or - for standard input")
	cmd.MarkFlagFilename("filename", "yaml", "yml")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check everything and show what would change, and change nothing")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the services' tasks to run, or their updates to end; fail if one pauses or rolls back")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 60*time.Second, "with --wait, how long to wait; the change goes on in the cluster after it")
	cmd.Flags().BoolVarP(&w.quiet, "quiet", "q", false, "with --wait, print no progress while waiting")
	return cmd
}

// applyDeployment makes the planned changes as one deployment, all or
// nothing, and prints a line per service as applyOne's callers do. It
// returns the services it created or changed.
func (s *session) applyDeployment(cmd *cobra.Command, c *client.Client, steps []applyStep) ([]*api.Service, error) {
	req := api.DeploymentRequest{}
	for _, st := range steps {
		req.Services = append(req.Services, st.doc.Spec)
	}
	d, err := c.Deploy(cmd.Context(), req)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	did := map[string]string{}
	for _, it := range d.Services {
		did[it.Name] = it.Action
	}
	words := map[string]string{api.DeployCreated: "created", api.DeployUpdated: "configured", api.DeployUnchanged: "unchanged", api.DeployResumed: "resumed"}
	for _, st := range steps {
		fmt.Fprintf(s.out(), "service/%s %s\n", st.doc.Spec.Name, words[did[st.doc.Spec.Name]])
	}
	return deployed(d), nil
}

// applyOne makes one planned change, and returns the service it created
// or changed (nil if unchanged). An update that meets a newer version of
// the service compares again and retries.
func (s *session) applyOne(cmd *cobra.Command, c *client.Client, st applyStep) (string, *api.Service, error) {
	ctx := cmd.Context()
	switch st.action {
	case "unchanged":
		return st.action, nil, nil
	case "created":
		svc, err := c.CreateService(ctx, st.doc.Spec)
		return st.action, svc, err
	}
	cur := st.cur
	for attempt := 1; ; attempt++ {
		if api.SpecEqual(&cur.Spec, &st.doc.Spec) {
			return "unchanged", nil, nil
		}
		svc, err := c.UpdateService(ctx, cur.ID, st.doc.Spec, cur.Version)
		if err == nil {
			return "configured", svc, nil
		}
		if !api.IsCode(err, api.CodeConflict) || attempt >= conflictRetries {
			return "", nil, err
		}
		again, e := c.Service(ctx, cur.ID, client.ReadOptions{})
		if e != nil || again.Version == cur.Version {
			return "", nil, err
		}
		cur = again
	}
}

// readManifests reads, normalizes and checks every document of every
// file; it fails with all the problems found, and then nothing is sent.
func (s *session) readManifests(files []string) ([]manifest.Document, error) {
	var docs []manifest.Document
	var problems manifest.Problems
	var paths []string
	for _, f := range files {
		if f == "-" {
			paths = append(paths, f)
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("apply: cannot read %s: %w", f, errors.Unwrap(err))
		}
		if !fi.IsDir() {
			paths = append(paths, f)
			continue
		}
		var inDir []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(f, pat))
			inDir = append(inDir, m...)
		}
		if len(inDir) == 0 {
			return nil, fmt.Errorf("apply: directory %s holds no .yaml or .yml files", f)
		}
		slices.Sort(inDir)
		paths = append(paths, inDir...)
	}
	for _, p := range paths {
		name := p
		var data []byte
		var err error
		if p == "-" {
			name = manifest.Stdin
			data, err = io.ReadAll(s.app.Stdin)
		} else {
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return nil, fmt.Errorf("apply: cannot read %s: %w", name, err)
		}
		ds, err := manifest.Read(name, data)
		var ps manifest.Problems
		if errors.As(err, &ps) {
			problems = append(problems, ps...)
		} else if err != nil {
			return nil, err
		}
		docs = append(docs, ds...)
	}
	for i := range docs {
		api.NormalizeSpec(&docs[i].Spec)
		var ps manifest.Problems
		if errors.As(docs[i].Validate(), &ps) {
			problems = append(problems, ps...)
		}
	}
	var ps manifest.Problems
	if errors.As(manifest.CheckSet(docs), &ps) {
		problems = append(problems, ps...)
	}
	if len(problems) > 0 {
		order := map[string]int{}
		for i, p := range paths {
			if p == "-" {
				p = manifest.Stdin
			}
			order[p] = i
		}
		slices.SortStableFunc(problems, func(a, b manifest.Problem) int {
			return cmp.Or(cmp.Compare(order[a.File], order[b.File]), cmp.Compare(a.Line, b.Line))
		})
		return nil, nothingApplied(problems)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("apply: %s hold%s no service specs", strings.Join(files, ", "), map[bool]string{true: "s", false: ""}[len(files) == 1])
	}
	return docs, nil
}

func nothingApplied(ps manifest.Problems) error {
	return fmt.Errorf("%s\nNothing was applied: fix %s and apply again", ps.Error(), map[bool]string{true: "this", false: "these"}[len(ps) == 1])
}

// indent makes the continuation lines of a multi-line message line up
// under a FILE:LINE prefix.
func indent(msg string) string { return strings.ReplaceAll(msg, "\n", "\n  ") }

func indent2(text string) string {
	if text == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ") + "\n"
}
