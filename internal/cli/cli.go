// Package cli implements the convergenode command line: init, run, id,
// status, peers, doc, presence, alerts and sim.
//
// Client commands (status, peers, doc, presence, alerts) talk to a running
// node through its local HTTP API; run writes the API's address to the
// "api" file in the home directory so they find it without flags.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// Run runs the command line args (without the program name), writing
// output to stdout and diagnostics to stderr. Cancelling ctx stops a
// running node cleanly.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// env holds the global flags and the I/O of one Run.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	home       string
	configPath string
	apiAddr    string
	json       bool
}

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "convergenode",
		Short:         "A peer-to-peer node for local-first databases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.home, "home", "", "home directory (default $CONVERGENODE_HOME or ~/.convergenode)")
	pf.StringVar(&e.configPath, "config", "", "config file (default <home>/config.toml)")
	pf.StringVar(&e.apiAddr, "api", "", "address of the node's local API for client commands (default $CONVERGENODE_API, <home>/api, then the config)")
	pf.BoolVar(&e.json, "json", false, "print JSON")
	root.AddCommand(e.initCmd(), e.idCmd())
	e.addCommands(root)
	return root
}

// homeDir returns the home directory from the flag, the environment or
// the default.
func (e *env) homeDir() (string, error) {
	if e.home != "" {
		return e.home, nil
	}
	if h := e.getenv("CONVERGENODE_HOME"); h != "" {
		return h, nil
	}
	uh, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory: use --home: %w", err)
	}
	return filepath.Join(uh, ".convergenode"), nil
}

func (e *env) configFile(home string) string {
	if e.configPath != "" {
		return e.configPath
	}
	if c := e.getenv("CONVERGENODE_CONFIG"); c != "" {
		return c
	}
	return filepath.Join(home, "config.toml")
}

// config loads the file and environment layers (flags are applied by the
// command) and resolves paths against the home directory.
func (e *env) config(mustExist bool) (Config, string, error) {
	home, err := e.homeDir()
	if err != nil {
		return Config{}, "", err
	}
	c, err := loadConfig(e.configFile(home), mustExist)
	if err != nil {
		return c, home, err
	}
	if err := applyEnv(&c, e.getenv); err != nil {
		return c, home, err
	}
	return c, home, nil
}

// print writes v as indented JSON with --json, and text otherwise.
func (e *env) print(v any, text func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(e.stdout)
	return nil
}
