package cli

import "github.com/spf13/cobra"

// addCommands adds the commands that need a node (run and the client
// commands).
func (e *env) addCommands(root *cobra.Command) {}
