package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/convergenode/convergenode/node"
	"github.com/spf13/cobra"
)

func (e *env) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the key file and the config file, and print the peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := e.homeDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(home, 0o700); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			cfgPath := e.configFile(home)
			if _, err := os.Stat(cfgPath); err == nil {
				return fmt.Errorf("init: %s already exists", cfgPath)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("init: %w", err)
			}
			c, _, err := e.config(false)
			if err != nil {
				return err
			}
			c = c.resolve(home)
			key, err := node.GenerateKey()
			if err != nil {
				return err
			}
			if err := node.WriteKey(c.KeyFile, key); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if err := os.WriteFile(cfgPath, defaultConfig, 0o600); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			id, err := node.PeerID(key)
			if err != nil {
				return err
			}
			out := map[string]string{"peer_id": id.String(), "key_file": c.KeyFile, "config": cfgPath}
			return e.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "peer ID %s\nkey     %s\nconfig  %s\n", id, c.KeyFile, cfgPath)
			})
		},
	}
}

func (e *env) idCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Print this node's peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, home, err := e.config(true)
			if err != nil {
				return err
			}
			c = c.resolve(home)
			key, err := node.ReadKey(c.KeyFile)
			if err != nil {
				return err
			}
			id, err := node.PeerID(key)
			if err != nil {
				return err
			}
			return e.print(map[string]string{"peer_id": id.String()}, func(w io.Writer) { fmt.Fprintln(w, id) })
		},
	}
}
