// Command simrun runs the simulator CLI on its own (the same flags as
// "convergenode sim"): go run ./sim/simcli/simrun --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/convergenode/convergenode/sim/simcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := simcli.CLI(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
