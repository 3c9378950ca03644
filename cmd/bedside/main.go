// Command bedside runs a Bedside hub and its administration commands.
//
//	bedside serve [--config FILE] [--listen ADDR] [--data DIR] ...
//	bedside token --user ID --role patient|clinician|admin|auditor [--ttl 1h]
//	              [--region LABEL] [--bucket LABEL] [--data DIR | --config FILE]
//	bedside audit verify [--data DIR | --config FILE] [--checkpoints FILE] [--pubkey KEY]
//	bedside audit checkpoints [--data DIR | --config FILE]
//	bedside audit pubkey [--data DIR | --config FILE]
//	bedside retention run [--dry-run] [--data DIR | --config FILE]
//	bedside report [--from WEEK] [--to WEEK] [--format json|csv] [--server URL [--token TOKEN]]
//	               [--data DIR | --config FILE]
//	bedside backup [--data DIR | --config FILE] [--server URL] FILE
//	bedside storage compact [--data DIR | --config FILE]
//	bedside version
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/storage/boltstore"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const (
	dbFile       = "bedside.db"
	keyFile      = "token.key"
	auditKeyFile = "audit.key"
)

const usage = `usage:
  bedside serve [flags]     run the hub (bedside serve -h lists the flags)
  bedside token [flags]     print a signed token for a user
  bedside audit verify      check the audit trail's hash chain and checkpoints (server stopped)
  bedside audit checkpoints print the signed checkpoints, to keep elsewhere (server stopped)
  bedside audit pubkey      print the public key that signs the checkpoints
  bedside retention run     delete what retention says has expired (server stopped)
  bedside report            the de-identified usage report (server stopped, or --server URL
                            with --token or the data directory's token.key)
  bedside backup FILE       a consistent copy of the running hub's store
  bedside storage compact   give freed space back to the disk (server stopped)
  bedside version           print the version
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stderr)
	case "token":
		err = token(args[1:], getenv, stdout, stderr)
	case "audit":
		err = auditCmd(ctx, args[1:], getenv, stdout, stderr)
	case "retention":
		err = retentionCmd(ctx, args[1:], getenv, stdout, stderr)
	case "backup":
		err = backupCmd(ctx, args[1:], getenv, stdout, stderr)
	case "report":
		err = reportCmd(ctx, args[1:], getenv, stdout, stderr)
	case "storage":
		err = storageCmd(args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "bedside", version)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "bedside: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "bedside:", err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bedside serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bedside serve: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	cfg, err := loadConfig(fs, &f, getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(&cfg, stderr)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serveHub(ctx, &cfg, log)
}

func newLogger(cfg *config, w io.Writer) (*slog.Logger, error) {
	level, err := cfg.logLevel()
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// serveHub runs the hub until ctx ends, then shuts down in order: stop
// taking connections, finish requests and writes in flight, close sockets
// with "going away", close the store.
func serveHub(ctx context.Context, cfg *config, log *slog.Logger) error {
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // cleared on WebSocket hijack
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// Listen first: a taken or impossible address fails before anything is
	// created on disk.
	ln, err := listen(cfg, srv)
	if err != nil {
		return err
	}
	defer ln.Close()

	store, key, auditKey, err := openData(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	turnSrv, ice, err := startTURN(ctx, cfg, log)
	if err != nil {
		return err
	}
	if turnSrv != nil {
		defer turnSrv.Close() // after the hub's shutdown: calls under way keep their relay till then
	}
	sfuSrv, err := startSFU(ctx, cfg, log)
	if err != nil {
		return err
	}
	if sfuSrv != nil {
		defer sfuSrv.Close() // after the hub's shutdown, like the relay
	}
	if sfuSrv != nil && turnSrv != nil {
		allowSFU(turnSrv, sfuSrv, cfg.SFU, log)
	}
	h, err := hub.New(hub.Options{Store: store, TokenKey: key, Config: cfg.Limits, Logger: log,
		Retention: cfg.Retention, AuditKey: auditKey, Audit: cfg.Audit, Reports: cfg.Reports, ICE: ice,
		SFU: sfuSrv, Collectors: turnMetrics(turnSrv)})
	if err != nil {
		return err
	}
	srv.Handler = h.Handler()
	log.Info("listening", "addr", ln.Addr().String(), "tls", cfg.tls())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown(cfg, log, srv, h, serveErr)
	return nil
}

// openData opens the data directory: the token key, the audit key and the
// store.
func openData(cfg *config, log *slog.Logger) (*boltstore.Store, []byte, ed25519.PrivateKey, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("make data directory: %w", err)
	}
	if info, err := os.Stat(cfg.Data); err == nil && info.Mode().Perm()&0o077 != 0 {
		log.Warn("data directory is open to other users; chmod 700 it", "data", cfg.Data,
			"mode", info.Mode().Perm().String())
	}
	dbPath := filepath.Join(cfg.Data, dbFile)
	keyPath := filepath.Join(cfg.Data, keyFile)
	key, created, err := auth.LoadOrCreateKey(keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	auditKey, auditCreated, err := loadAuditKey(cfg.Data, true)
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := boltstore.Open(dbPath, boltstore.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	log.Info("bedside starting", "version", version, "data", cfg.Data, "db", dbPath,
		"tokenKey", keyPath, "tokenKeyCreated", created,
		"auditKey", filepath.Join(cfg.Data, auditKeyFile), "auditKeyCreated", auditCreated)
	return store, key, auditKey, nil
}

// shutdown stops in order: refuse new work, tell sockets "going away" while
// requests in flight finish, and past the deadline close what is left. A
// client too slow to finish in time does not make the exit a failure: the
// store commits every write it has taken before it closes.
func shutdown(cfg *config, log *slog.Logger, srv *http.Server, h *hub.Hub, serveErr chan error) {
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()

	h.Drain()
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Shutdown(ctx) }()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("requests still running at the deadline; closing them", "err", err)
		srv.Close()
	}
	<-serveErr
	if err := <-hubDone; err != nil {
		log.Warn("websockets still closing at the deadline", "err", err)
	}
	// Requests that finished after the hub's own shutdown checkpoint stored
	// their audit records since: sign those too.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if _, _, err := h.Checkpoint(cctx); err != nil {
		log.Error("audit checkpoint not written", "err", err)
	}
	log.Info("stopped")
}

// listen opens the listener, wrapped in TLS when configured.
func listen(cfg *config, srv *http.Server) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	var tc *tls.Config
	switch {
	case cfg.TLS.Cert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}}
	case len(cfg.TLS.AutocertDomains) > 0:
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(cfg.TLS.AutocertDomains...),
			Cache:      autocert.DirCache(filepath.Join(cfg.Data, "autocert")),
			Email:      cfg.TLS.AutocertEmail,
		}
		tc = m.TLSConfig()
	default:
		return ln, nil
	}
	tc.MinVersion = tls.VersionTLS12
	if len(tc.NextProtos) == 0 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	srv.TLSConfig = tc
	return tls.NewListener(ln, tc), nil
}

func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, f := adminFlags("bedside token", stderr)
	user := fs.String("user", "", "user `id` (the token's sub)")
	role := fs.String("role", "", "patient, clinician, admin or auditor")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	region := fs.String("region", "", "the user's region `label`, for reports (optional)")
	bucket := fs.String("bucket", "", "the user's demographic bucket `label`, for reports (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *role == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bedside token: --user and --role are required")
		fs.Usage()
		return errUsage
	}

	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	// Only serve creates the key: a token signed with a key made here by
	// mistake (the wrong directory) would be refused by the running hub.
	key, err := auth.LoadKey(filepath.Join(cfg.Data, keyFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no token key in %s: start `bedside serve` with this data directory once, "+
			"or name the right one with --data", cfg.Data)
	}
	if err != nil {
		return err
	}
	if *ttl > cfg.Limits.MaxTokenTTL {
		return fmt.Errorf("--ttl %v is longer than the hub accepts (limits.maxTokenTTL, %v)",
			*ttl, cfg.Limits.MaxTokenTTL)
	}
	var opts []auth.Option
	if *region != "" {
		opts = append(opts, auth.WithRegion(*region))
	}
	if *bucket != "" {
		opts = append(opts, auth.WithBucket(*bucket))
	}
	tok, err := auth.Mint(key, *user, *role, *ttl, time.Now(), opts...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
