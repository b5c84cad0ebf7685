package cli

import (
	"github.com/convergenode/convergenode/chaos"
	"github.com/spf13/cobra"
)

// addChaos adds the chaos command: real nodes on an in-memory network
// under faults and Byzantine peers (package chaos parses its own flags).
func (e *env) addChaos(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:                "chaos [flags]",
		Short:              "Test real nodes under faults and Byzantine peers (see \"convergenode chaos -h\")",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return chaos.CLI(cmd.Context(), args, e.stdout)
		},
	})
}
