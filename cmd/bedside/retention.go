package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
	"github.com/bedside/bedside/storage/boltstore"
)

// retentionCmd runs `bedside retention run`: one sweep now, offline, with the
// configured policy; --dry-run counts what would go and deletes nothing.
func retentionCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		fmt.Fprintln(stderr, "usage: bedside retention run [--dry-run] [--progress 1s] [--data DIR | --config FILE]")
		return errUsage
	}
	fs, f := adminFlags("bedside retention run", stderr)
	dry := fs.Bool("dry-run", false, "count what would be deleted; delete nothing")
	every := fs.Duration("progress", time.Second, "print progress at most this often (0: after every session)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bedside retention run: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *every < 0 {
		fmt.Fprintln(stderr, "bedside retention run: --progress must not be negative")
		return errUsage
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	store, err := boltstore.Open(filepath.Join(cfg.Data, dbFile), boltstore.Options{})
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("%w: the server is running and sweeps on its own every %v; stop it to sweep here",
			err, cfg.Retention.Interval)
	}
	if err != nil {
		return err
	}
	defer store.Close()

	now := time.Now()
	policy := cfg.Retention.Policy(now, *dry)
	policy.Progress = progressPrinter(stderr, time.Now, *every)
	policy.Unpaced = true // the server is stopped: nothing waits for the store
	st, err := store.Sweep(ctx, policy)
	verb := "deleted"
	if *dry {
		verb = "would delete"
	} else if aerr := store.AppendAudit(ctx, []audit.Record{hub.SweepAuditRecord(now, st, err)}); aerr != nil {
		err = errors.Join(err, aerr)
	}
	fmt.Fprintf(stdout, "%s: %d messages, %d retry records, %d read cursors, %d consent records, "+
		"%d audit records, %d usage weeks; %d sessions expired, %d held\n",
		verb, st.Messages, st.Retries, st.Cursors, st.Consents, st.Audit, st.Usage, st.Expired, st.Held)
	return err
}

// progressPrinter returns a sweep progress callback that writes a line to w
// at most once per every, so that a long run shows it is moving and a short
// one prints nothing.
func progressPrinter(w io.Writer, now func() time.Time, every time.Duration) func(storage.SweepStats, int, int) {
	last := now()
	return func(st storage.SweepStats, done, total int) {
		if t := now(); every <= 0 || t.Sub(last) >= every {
			last = t
			fmt.Fprintf(w, "sweeping: %d of %d sessions, %d messages so far\n", done, total, st.Messages)
		}
	}
}
