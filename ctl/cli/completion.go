package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api/client"
)

func (s *session) completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print the completion script for a shell. Besides commands and flags it
completes service names and node hostnames by asking the manager.`,
		Example: `  # bash, for this shell:
  source <(warrenctl completion bash)
  # bash, for good:
  warrenctl completion bash > /etc/bash_completion.d/warrenctl
  # zsh:
  warrenctl completion zsh > "${fpath[1]}/_warrenctl"
  # fish:
  warrenctl completion fish > ~/.config/fish/completions/warrenctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(s.out(), true)
			case "zsh":
				return root.GenZshCompletion(s.out())
			case "fish":
				return root.GenFishCompletion(s.out(), true)
			}
			return usagef(cmd, "no completion for shell %q: use bash, zsh or fish", args[0])
		},
	}
}

// completionTimeout bounds how long a <TAB> waits for the manager.
const completionTimeout = 2 * time.Second

// serviceNames lists the service names starting with prefix, except those
// already on the command line.
func (s *session) serviceNames(ctx context.Context, prefix string, taken []string) []string {
	c, err := s.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	services, err := c.Services(ctx, client.ReadOptions{})
	if err != nil {
		return nil
	}
	var names []string
	for _, sv := range services {
		if strings.HasPrefix(sv.Spec.Name, prefix) && !slices.Contains(taken, sv.Spec.Name) {
			names = append(names, sv.Spec.Name)
		}
	}
	slices.Sort(names)
	return names
}

// completeServices completes the SERVICE arguments of a command that
// takes several.
func (s *session) completeServices(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return s.serviceNames(cmd.Context(), toComplete, args), cobra.ShellCompDirectiveNoFileComp
}

// completeService completes the one SERVICE argument of a command.
func (s *session) completeService(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return s.serviceNames(cmd.Context(), toComplete, nil), cobra.ShellCompDirectiveNoFileComp
}

// completeScale completes SERVICE= for service scale.
func (s *session) completeScale(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if strings.Contains(toComplete, "=") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var taken []string
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		taken = append(taken, name)
	}
	names := s.serviceNames(cmd.Context(), toComplete, taken)
	for i := range names {
		names[i] += "="
	}
	return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeNode completes the one NODE argument of a command.
func (s *session) completeNode(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return s.completeNodes(cmd, args, toComplete)
}

// completeNodes completes the NODE arguments (hostnames) of a command
// that takes several.
func (s *session) completeNodes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, err := s.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	nodes, err := c.Nodes(ctx, client.ReadOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, n := range nodes {
		h := n.Description.Hostname
		if strings.HasPrefix(h, toComplete) && !slices.Contains(args, h) {
			names = append(names, h)
		}
	}
	slices.Sort(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeVolumes completes the NAME arguments (volumes) of a command
// that takes several.
func (s *session) completeVolumes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, err := s.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	vols, err := c.Volumes(ctx, client.ReadOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, v := range vols {
		if n := v.Spec.Name; strings.HasPrefix(n, toComplete) && !slices.Contains(args, n) {
			names = append(names, n)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
