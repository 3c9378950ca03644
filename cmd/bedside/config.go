package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bedside/bedside/hub"
)

var errConfig = errors.New("configuration")

// config is everything `bedside serve` can be told. Defaults come first, then
// the YAML file (--config or BEDSIDE_CONFIG), then BEDSIDE_* variables, then
// flags. configs/clinic.yaml documents every field.
type config struct {
	Listen   string `yaml:"listen"`
	Data     string `yaml:"data"`
	Insecure bool   `yaml:"insecure"`
	TLS      struct {
		Cert            string   `yaml:"cert"`
		Key             string   `yaml:"key"`
		AutocertDomains []string `yaml:"autocertDomains"`
		AutocertEmail   string   `yaml:"autocertEmail"`
	} `yaml:"tls"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	ShutdownTimeout time.Duration    `yaml:"shutdownTimeout"`
	Limits          hub.Config       `yaml:"limits"`
	Retention       hub.Retention    `yaml:"retention"`
	Audit           hub.AuditConfig  `yaml:"audit"`
	Reports         hub.ReportConfig `yaml:"reports"`
	TURN            turnConfig       `yaml:"turn"`
	SFU             sfuConfig        `yaml:"sfu"`
}

func defaultConfig() config {
	var c config
	c.Listen = "127.0.0.1:8080"
	c.Data = "data"
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.ShutdownTimeout = 30 * time.Second
	c.TURN.Enabled = true
	c.SFU.Enabled = true
	return c
}

// serveFlags are the flags of `bedside serve`; empty means "not given".
type serveFlags struct {
	config, listen, data, tlsCert, tlsKey, domains, logLevel, logFormat string
	turnListen, sfuListen                                               string
	insecure                                                            bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (env BEDSIDE_CONFIG)")
	fs.StringVar(&f.listen, "listen", "", "listen `address` (default 127.0.0.1:8080; env BEDSIDE_LISTEN)")
	fs.StringVar(&f.data, "data", "", "data `directory` (default ./data; env BEDSIDE_DATA)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate `file` (env BEDSIDE_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key `file` (env BEDSIDE_TLS_KEY)")
	fs.StringVar(&f.domains, "autocert", "",
		"comma-separated `domains` for automatic certificates (env BEDSIDE_AUTOCERT)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (env BEDSIDE_LOG_LEVEL)")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json (env BEDSIDE_LOG_FORMAT)")
	fs.StringVar(&f.turnListen, "turn-listen", "",
		"TURN relay listen `address` (default the hub's host, port 3478; env BEDSIDE_TURN_LISTEN)")
	fs.StringVar(&f.sfuListen, "sfu-listen", "",
		"SFU media UDP `address` (default the hub's host, port 3479; env BEDSIDE_SFU_LISTEN)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP on a non-loopback address (env BEDSIDE_INSECURE)")
}

// adminFlags is the flag set of an administration command: --data and
// --config, which name the data directory the way serve does.
func adminFlags(name string, stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &serveFlags{}
	fs.StringVar(&f.data, "data", "", "data `directory` (default ./data; env BEDSIDE_DATA)")
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` naming the data directory")
	return fs, f
}

// loadConfig layers defaults, file, environment and flags.
func loadConfig(fs *flag.FlagSet, f *serveFlags, getenv func(string) string) (config, error) {
	c := defaultConfig()
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	path := pick(f.config, set["config"], getenv("BEDSIDE_CONFIG"))
	if path != "" {
		if err := readConfigFile(path, &c); err != nil {
			return c, err
		}
	}

	override := func(dst *string, flagName, env, flagVal string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if set[flagName] {
			*dst = flagVal
		}
	}
	override(&c.Listen, "listen", "BEDSIDE_LISTEN", f.listen)
	override(&c.Data, "data", "BEDSIDE_DATA", f.data)
	override(&c.TLS.Cert, "tls-cert", "BEDSIDE_TLS_CERT", f.tlsCert)
	override(&c.TLS.Key, "tls-key", "BEDSIDE_TLS_KEY", f.tlsKey)
	override(&c.Log.Level, "log-level", "BEDSIDE_LOG_LEVEL", f.logLevel)
	override(&c.Log.Format, "log-format", "BEDSIDE_LOG_FORMAT", f.logFormat)
	override(&c.TURN.Listen, "turn-listen", "BEDSIDE_TURN_LISTEN", f.turnListen)
	override(&c.SFU.Listen, "sfu-listen", "BEDSIDE_SFU_LISTEN", f.sfuListen)
	domains := strings.Join(c.TLS.AutocertDomains, ",")
	override(&domains, "autocert", "BEDSIDE_AUTOCERT", f.domains)
	c.TLS.AutocertDomains = splitList(domains)

	if v := getenv("BEDSIDE_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("%w: BEDSIDE_INSECURE=%q is not a boolean", errConfig, v)
		}
		c.Insecure = b
	}
	if set["insecure"] {
		c.Insecure = f.insecure
	}
	return c, c.validate()
}

func pick(flagVal string, flagSet bool, env string) string {
	if flagSet {
		return flagVal
	}
	return env
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func readConfigFile(path string, c *config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	switch err := dec.Decode(c); {
	case errors.Is(err, io.EOF):
		return nil // no settings: the defaults
	case err != nil:
		return fmt.Errorf("%w: %s: %w", errConfig, path, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s holds more than one YAML document", errConfig, path)
	}
	return nil
}

func (c *config) validate() error {
	if _, err := c.logLevel(); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("%w: log format %q is not text or json", errConfig, c.Log.Format)
	}
	if c.Data == "" {
		return fmt.Errorf("%w: data directory is empty", errConfig)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("%w: give both a TLS certificate and its key", errConfig)
	}
	if c.TLS.Cert != "" && len(c.TLS.AutocertDomains) > 0 {
		return fmt.Errorf("%w: give a TLS certificate or autocert domains, not both", errConfig)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: shutdownTimeout must be positive", errConfig)
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %w", errConfig, c.Listen, err)
	}
	if !c.tls() && !c.Insecure && !isLoopback(host) {
		return fmt.Errorf("%w: refusing plain HTTP on %s, which is not a loopback address: "+
			"give --tls-cert/--tls-key or --autocert, or say --insecure if a TLS proxy "+
			"stands in front", errConfig, c.Listen)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: limits: %w", errConfig, err)
	}
	if err := c.Retention.Validate(); err != nil {
		return fmt.Errorf("%w: retention: %w", errConfig, err)
	}
	if err := c.Audit.Validate(); err != nil {
		return fmt.Errorf("%w: audit: %w", errConfig, err)
	}
	if err := c.Reports.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	if _, err := c.TURN.plan(c.Listen); err != nil {
		return err
	}
	return nil
}

func (c *config) tls() bool { return c.TLS.Cert != "" || len(c.TLS.AutocertDomains) > 0 }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return 0, fmt.Errorf("%w: log level %q", errConfig, c.Log.Level)
	}
	return l, nil
}
