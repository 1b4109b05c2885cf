package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) imageCmd() *cobra.Command {
	cmd := groupCmd("image", "Manage the images on a node",
		`Edge devices often have no registry: load images from OCI or
"docker save" tarballs straight into the node's containerd, and list what
a node has. The node is the one whose manager warrenctl talks to.`)
	cmd.AddCommand(s.imageLoadCmd(), s.imageLsCmd())
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
