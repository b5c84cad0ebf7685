package cli

import (
	"github.com/convergenode/convergenode/sim/simcli"
	"github.com/spf13/cobra"
)

// addSim adds the sim command: the in-process simulator (package
// sim/simcli parses its own flags).
func (e *env) addSim(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:                "sim [flags]",
		Short:              "Run the simulator (see \"convergenode sim -h\")",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return simcli.CLI(cmd.Context(), args, e.stdout)
		},
	})
}
