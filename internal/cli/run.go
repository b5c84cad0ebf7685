package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/convergenode/convergenode/node"
	"github.com/spf13/cobra"
)

// addCommands adds run and the client commands.
func (e *env) addCommands(root *cobra.Command) {
	root.AddCommand(e.runCmd(), e.statusCmd(), e.peersCmd(), e.alertsCmd(), e.docCmd(), e.presenceCmd())
	e.addSim(root)
	e.addChaos(root)
}

func (e *env) runCmd() *cobra.Command {
	var (
		listen, bootstrap, docs []string
		dataDir, logLevel       string
		mdns, dht, nat, dev     bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node until SIGINT or SIGTERM",
		Long: `Run the node: prints its listen addresses and "ready" once it serves.

Configuration comes from the config file, then CONVERGENODE_* environment
variables, then flags (flags win). --dev runs with the embedded default
configuration and a fresh key in a temporary directory, removed on exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var c Config
			var home string
			if dev {
				dir, err := os.MkdirTemp("", "convergenode-dev-")
				if err != nil {
					return fmt.Errorf("run --dev: %w", err)
				}
				defer os.RemoveAll(dir)
				home = dir
				c = DefaultConfig()
				if err := applyEnv(&c, e.getenv); err != nil {
					return err
				}
				c.Listen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
				c = c.resolve(home)
				key, err := node.GenerateKey()
				if err != nil {
					return err
				}
				if err := node.WriteKey(c.KeyFile, key); err != nil {
					return err
				}
			} else {
				var err error
				if c, home, err = e.config(true); err != nil {
					if errors.Is(err, os.ErrNotExist) {
						return fmt.Errorf("%w (run \"convergenode init\" first, or use --dev)", err)
					}
					return err
				}
				c = c.resolve(home)
			}
			f := cmd.Flags()
			if f.Changed("listen") {
				c.Listen = listen
			}
			if f.Changed("bootstrap") {
				c.Bootstrap = bootstrap
			}
			if f.Changed("doc") {
				c.Docs = docs
			}
			if f.Changed("data-dir") {
				c.DataDir = dataDir
			}
			if f.Changed("log-level") {
				c.LogLevel = logLevel
			}
			if f.Changed("mdns") {
				c.Discovery.MDNS = mdns
			}
			if f.Changed("dht") {
				c.Discovery.DHT = dht
			}
			if f.Changed("nat") {
				c.Discovery.NAT = nat
			}
			if e.apiAddr != "" {
				c.API = e.apiAddr
			}
			return e.run(cmd.Context(), c, home)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&listen, "listen", nil, "libp2p listen multiaddrs (comma-separated or repeated)")
	f.StringSliceVar(&bootstrap, "bootstrap", nil, "bootstrap peer multiaddrs with /p2p/<id>")
	f.StringSliceVar(&docs, "doc", nil, "documents to join at start")
	f.StringVar(&dataDir, "data-dir", "", "store directory")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error")
	f.BoolVar(&mdns, "mdns", false, "mDNS discovery on the LAN")
	f.BoolVar(&dht, "dht", false, "Kademlia DHT discovery")
	f.BoolVar(&nat, "nat", false, "AutoNAT, hole punching and the relay client")
	f.BoolVar(&dev, "dev", false, "embedded default config in a temporary directory")
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// run starts a node from c and serves until ctx is cancelled.
func (e *env) run(ctx context.Context, c Config, home string) error {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return err
	}
	key, err := node.ReadKey(c.KeyFile)
	if err != nil {
		return err
	}
	cfg := node.DefaultConfig(c.DataDir)
	cfg.Key = key
	cfg.Listen = c.Listen
	cfg.PreferQUICOnLAN = c.PreferQUICOnLAN
	cfg.Bootstrap = c.Bootstrap
	cfg.Docs = c.Docs
	cfg.APIAddr = c.API
	cfg.MDNS, cfg.DHT, cfg.NAT = c.Discovery.MDNS, c.Discovery.DHT, c.Discovery.NAT
	cfg.TrustLog = c.TrustLog
	cfg.SnapshotEvery = c.SnapshotEvery
	cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	apiFile := filepath.Join(home, "api")
	if a := n.APIAddr(); a != "" {
		if err := os.WriteFile(apiFile, []byte(a+"\n"), 0o600); err != nil {
			return fmt.Errorf("run: write %s: %w", apiFile, err)
		}
		defer os.Remove(apiFile)
	}
	info := n.Info()
	out := map[string]any{"peer_id": info.ID, "addrs": info.Addrs, "api": info.API, "home": home, "ready": true}
	e.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "peer ID %s\n", info.ID)
		for _, a := range info.Addrs {
			fmt.Fprintf(w, "listening on %s\n", a)
		}
		if info.API != "" {
			fmt.Fprintf(w, "api http://%s\n", info.API)
		}
		fmt.Fprintln(w, "ready")
	})
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "shutting down")
	if err := n.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func joinComma(s []string) string { return strings.Join(s, ",") }
