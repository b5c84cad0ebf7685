package cli

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

//go:embed default.toml
var defaultConfig []byte

// Config is the node's configuration file (TOML). See default.toml for the
// meaning and default of every field.
type Config struct {
	DataDir string   `toml:"data_dir" json:"data_dir"`
	KeyFile string   `toml:"key_file" json:"key_file"`
	Listen  []string `toml:"listen" json:"listen"`
	// PreferQUICOnLAN: see node.Config.PreferQUICOnLAN.
	PreferQUICOnLAN bool     `toml:"prefer_quic_on_lan" json:"prefer_quic_on_lan"`
	API             string   `toml:"api" json:"api"`
	Bootstrap       []string `toml:"bootstrap" json:"bootstrap"`
	Docs            []string `toml:"docs" json:"docs"`
	LogLevel        string   `toml:"log_level" json:"log_level"`
	TrustLog        bool     `toml:"trust_log" json:"trust_log"`
	// SnapshotEvery: ops between two snapshots of a document (0: the
	// node's default, negative: never). See node.Config.SnapshotEvery.
	SnapshotEvery int       `toml:"snapshot_every" json:"snapshot_every"`
	Discovery     Discovery `toml:"discovery" json:"discovery"`
}

// Discovery selects the discovery mechanisms.
type Discovery struct {
	MDNS bool `toml:"mdns" json:"mdns"`
	DHT  bool `toml:"dht" json:"dht"`
	NAT  bool `toml:"nat" json:"nat"`
}

// DefaultConfig returns the embedded default configuration.
func DefaultConfig() Config {
	var c Config
	if _, err := toml.Decode(string(defaultConfig), &c); err != nil {
		panic("cli: embedded default.toml: " + err.Error())
	}
	return c
}

// loadConfig reads path over the defaults. A missing file gives the
// defaults when mustExist is false.
func loadConfig(path string, mustExist bool) (Config, error) {
	c := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			return c, nil
		}
		return c, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("config %s: unknown key %q", path, und[0].String())
	}
	return c, nil
}

// applyEnv overrides c with CONVERGENODE_* variables from getenv.
func applyEnv(c *Config, getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv("CONVERGENODE_" + name); v != "" {
			*dst = v
		}
	}
	list := func(name string, dst *[]string) {
		if v, ok := lookup(getenv, "CONVERGENODE_"+name); ok {
			*dst = splitList(v)
		}
	}
	boolean := func(name string, dst *bool) error {
		if v := getenv("CONVERGENODE_" + name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("CONVERGENODE_%s: %w", name, err)
			}
			*dst = b
		}
		return nil
	}
	str("DATA_DIR", &c.DataDir)
	str("KEY_FILE", &c.KeyFile)
	str("API", &c.API)
	str("LOG_LEVEL", &c.LogLevel)
	list("LISTEN", &c.Listen)
	list("BOOTSTRAP", &c.Bootstrap)
	list("DOCS", &c.Docs)
	var snapErr error
	if v := getenv("CONVERGENODE_SNAPSHOT_EVERY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			snapErr = fmt.Errorf("CONVERGENODE_SNAPSHOT_EVERY: %w", err)
		} else {
			c.SnapshotEvery = n
		}
	}
	return errors.Join(snapErr, boolean("TRUST_LOG", &c.TrustLog), boolean("MDNS", &c.Discovery.MDNS), boolean("DHT", &c.Discovery.DHT), boolean("NAT", &c.Discovery.NAT))
}

func lookup(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return v, v != ""
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// resolve makes relative paths in c relative to home.
func (c Config) resolve(home string) Config {
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(home, c.DataDir)
	}
	if c.KeyFile != "" && !filepath.IsAbs(c.KeyFile) {
		c.KeyFile = filepath.Join(home, c.KeyFile)
	}
	return c
}
