// Command simrun runs the simulator CLI on its own (the same flags as
// "convergenode sim"): go run ./sim/simcli/simrun --help.
//
// For profiling, SIMRUN_CPUPROFILE=file writes a CPU profile of the run
// and SIMRUN_MEMPROFILE=file a heap profile at its end.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"

	"github.com/convergenode/convergenode/sim/simcli"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if path := os.Getenv("SIMRUN_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := simcli.CLI(ctx, os.Args[1:], os.Stdout); err != nil {
		return err
	}
	if path := os.Getenv("SIMRUN_MEMPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		return pprof.WriteHeapProfile(f)
	}
	return nil
}
