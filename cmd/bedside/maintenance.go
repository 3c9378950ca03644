package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/storage/boltstore"
)

// backupCmd runs `bedside backup FILE`: a consistent copy of the running
// hub's store, fetched over its API with a short-lived admin token minted
// from the key in the data directory, written to FILE only once complete
// and checked.
func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, f := adminFlags("bedside backup", stderr)
	server := fs.String("server", "", "the hub's `URL` (default http://LISTEN from the configuration)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: bedside backup [--data DIR | --config FILE] [--server URL] FILE")
		return errUsage
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	key, err := auth.LoadKey(filepath.Join(cfg.Data, keyFile))
	if err != nil {
		return err
	}
	token, err := auth.Mint(key, "bedside-backup", "admin", 5*time.Minute, time.Now())
	if err != nil {
		return err
	}
	url := *server
	if url == "" {
		url = "http://" + cfg.Listen
	}

	out := fs.Arg(0)
	// A new file of our own, created 0600, whatever lies at other names.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	n, err := fetchBackup(ctx, url, token, tmp)
	if err != nil {
		return err
	}
	if err := boltstore.Check(tmp.Name()); err != nil {
		return fmt.Errorf("the copy does not open: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %d bytes written to %s\n", n, out)
	return nil
}

func fetchBackup(ctx context.Context, url, token string, file *os.File) (int64, error) {
	defer file.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reach the hub: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("the hub answered %d: %s", resp.StatusCode, b)
	}
	n, err := io.Copy(file, resp.Body)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// storageCmd runs `bedside storage compact`: it rewrites the store without
// free pages, offline, to give the space deletions freed back to the disk.
func storageCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "compact" {
		fmt.Fprintln(stderr, "usage: bedside storage compact [--data DIR | --config FILE]")
		return errUsage
	}
	fs, f := adminFlags("bedside storage compact", stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	before, after, err := boltstore.Compact(filepath.Join(cfg.Data, dbFile))
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("%w: stop the server first", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %d bytes, was %d\n", filepath.Join(cfg.Data, dbFile), after, before)
	return nil
}
