package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) imageCmd() *cobra.Command {
	cmd := groupCmd("image", "Manage the fleet's images",
		`Edge devices often have no registry: load images from OCI or
"docker save" tarballs straight into a node's containerd (the one whose
manager warrenctl talks to); every other node that needs one for a task
fetches it from a node that holds it. image ls shows which nodes hold
which images; image prestage copies one to nodes ahead of a rollout.`)
	cmd.AddCommand(s.imageLoadCmd(), s.imageLsCmd(), s.imagePrestageCmd())
	return cmd
}

func (s *session) imageLoadCmd() *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "load [-i] FILE.tar",
		Short: "Load an image tarball into the node",
		Long: `Load an OCI image-layout or "docker save" tarball into the node's
containerd and unpack it, so services can use it with no registry.
Use - (or no file with -i -) to read the tarball from standard input.`,
		Example: `  warrenctl image load busybox.tar
  docker save myapp:1.2 | ssh pi-7 warrenctl image load -
  warrenctl image load -i myapp.tar`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 0 && input == "") || (len(args) == 1 && input != "") {
				return usagef(cmd, "give one tarball, as an argument or with -i.\nUsage:  %s", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := input
			if len(args) == 1 {
				path = args[0]
			}
			var r io.Reader = s.app.Stdin
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("image load: %w", err)
				}
				defer f.Close()
				r = f
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			imgs, err := c.LoadImage(cmd.Context(), r)
			if err != nil {
				return err
			}
			for _, i := range imgs {
				fmt.Fprintf(s.out(), "Loaded image: %s\n", i.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read the tarball from this file (- for standard input)")
	return cmd
}

// fleetImage is one image and the nodes that hold it, as image ls shows it.
type fleetImage struct {
	Name   string   `json:"name" yaml:"name"`
	Digest string   `json:"digest" yaml:"digest"`
	Size   int64    `json:"size" yaml:"size"`
	Nodes  []string `json:"nodes" yaml:"nodes"`
}

func (s *session) imageLsCmd() *cobra.Command {
	var out outputFlag
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the fleet's images and the nodes that hold them",
		Long: `List the images the nodes hold, as their agents last said, with the nodes
that hold each: a node that needs an image for a task fetches it from one
of them, with no registry.`,
		Example: `  warrenctl image ls
  warrenctl image ls -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context(), client.ReadOptions{})
			if err != nil {
				return err
			}
			imgs := fleetImages(nodes)
			if done, err := listed(s.out(), &out, imgs, quiet, func(i fleetImage) string { return i.Name }); done {
				return err
			}
			rows := make([][]string, 0, len(imgs))
			for _, i := range imgs {
				d := strings.TrimPrefix(i.Digest, "sha256:")
				if len(d) > 12 {
					d = d[:12]
				}
				rows = append(rows, []string{i.Name, d, api.FormatBytes(i.Size), strings.Join(i.Nodes, ",")})
			}
			return format.WriteTable(s.out(), []string{"NAME", "DIGEST", "SIZE", "NODES"}, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only print image names")
	addOutputFlag(cmd, &out, format.Table, format.Table, format.JSON, format.YAML)
	return cmd
}

// fleetImages gathers the images of the nodes' records: one row per name
// and digest, with the nodes (hostnames, sorted) that hold it.
func fleetImages(nodes []api.Node) []fleetImage {
	byKey := map[[2]string]*fleetImage{}
	for _, n := range nodes {
		for _, i := range n.Description.Images {
			k := [2]string{i.Ref, i.Target.Digest}
			fi := byKey[k]
			if fi == nil {
				fi = &fleetImage{Name: i.Ref, Digest: i.Target.Digest, Size: i.Size}
				byKey[k] = fi
			}
			fi.Nodes = append(fi.Nodes, n.Description.Hostname)
		}
	}
	out := make([]fleetImage, 0, len(byKey))
	for _, fi := range byKey {
		slices.Sort(fi.Nodes)
		out = append(out, *fi)
	}
	slices.SortFunc(out, func(a, b fleetImage) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	return out
}

func (s *session) imagePrestageCmd() *cobra.Command {
	var constraints []string
	cmd := &cobra.Command{
		Use:   "prestage IMAGE",
		Short: "Copy an image to nodes ahead of a rollout",
		Long: `Make IMAGE present on every ready node (or those the constraints pick),
fetched from a node that holds it, so that a rollout starts without
waiting for transfers. Each node says whether it held the image already
and how long fetching took; a node that failed is named, and the command
exits non-zero.`,
		Example: `  warrenctl image prestage localhost/app:2
  warrenctl image prestage --constraint node.labels.site==north localhost/app:2`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cons []api.Constraint
			for _, e := range constraints {
				c, err := api.ParseConstraint(e)
				if err != nil {
					return err
				}
				cons = append(cons, c)
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context(), client.ReadOptions{})
			if err != nil {
				return err
			}
			var picked []api.Node
			for _, n := range nodes {
				ok := n.Status.State == api.NodeReady
				for _, k := range cons {
					ok = ok && k.Matches(&n)
				}
				if ok {
					picked = append(picked, n)
				}
			}
			if len(picked) == 0 {
				return fmt.Errorf("no ready node matches %v: nothing to prestage", constraints)
			}
			type result struct {
				row []string
				err error
			}
			results := make([]result, len(picked))
			var wg sync.WaitGroup
			for i, n := range picked {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := c.PrestageImage(cmd.Context(), n.ID, args[0])
					switch {
					case err != nil:
						results[i] = result{row: []string{n.Description.Hostname, "failed", err.Error()}, err: err}
					case res.Already:
						results[i] = result{row: []string{n.Description.Hostname, "present", "held it already"}}
					default:
						results[i] = result{row: []string{n.Description.Hostname, "fetched", fmt.Sprintf("%s in %s", api.FormatBytes(res.Image.Size), time.Duration(res.Took).Round(time.Millisecond))}}
					}
				}()
			}
			wg.Wait()
			rows := make([][]string, 0, len(results))
			failed := 0
			for _, r := range results {
				rows = append(rows, r.row)
				if r.err != nil {
					failed++
				}
			}
			if err := format.WriteTable(s.out(), []string{"NODE", "IMAGE", "DETAIL"}, rows); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d nodes do not hold %s", failed, len(picked), args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&constraints, "constraint", nil, "only the nodes that match, e.g. node.labels.site==north (repeatable)")
	return cmd
}
