package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
)

// Version is warrenctl's version, set when building a release:
//
//	go build -ldflags "-X github.com/warren-edge/warren/ctl/cli.Version=v0.3.0" ./ctl/warrenctl
var Version = "dev"

func clientVersion() string {
	v := Version
	if v == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return v
}

func (s *session) versionCmd() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the versions of warrenctl and of the manager",
		Long: `Show warrenctl's version and, unless --client is given, the version of
the manager it talks to. Fails if the manager cannot be reached, as
docker version does.`,
		Example: `  warrenctl version
  warrenctl version --client`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(s.out(), "Client: warrenctl %s (%s, %s/%s)\n", clientVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if clientOnly {
				return nil
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out(), "Server: warren-manager %s at %s (node %s, raft %s)\n", info.Version, s.hostAddr(), info.NodeID, info.RaftState)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only show warrenctl's version")
	return cmd
}
