package cli

import "github.com/spf13/cobra"

// addSim adds the sim command once the simulator's CLI exists.
func (e *env) addSim(root *cobra.Command) {}
