package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/bedside/bedside/storage/audit"
	"github.com/bedside/bedside/storage/boltstore"
)

// errChain marks a broken audit trail: the exit status is 1 and the message
// names the first bad record.
var errChain = errors.New("audit trail broken")

// auditCmd runs `bedside audit verify`: it reads the whole trail from the
// data directory, offline, and checks every link of the hash chain.
func auditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: bedside audit verify [--data DIR | --config FILE]")
		return errUsage
	}
	fs, f := adminFlags("bedside audit verify", stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}

	store, err := boltstore.Open(filepath.Join(cfg.Data, dbFile), boltstore.Options{})
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("%w: stop the server first; the audit trail is verified offline", err)
	}
	if err != nil {
		return err
	}
	defer store.Close()

	var v audit.Verifier
	for {
		page, err := store.AuditRecords(ctx, v.Count(), 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if err := v.Next(r); err != nil {
				return fmt.Errorf("%w after %d good records: %w", errChain, v.Count(), err)
			}
		}
	}
	head := v.Head()
	fmt.Fprintf(stdout, "audit trail intact: %d records, head %x\n", v.Count(), head[:])
	return nil
}
