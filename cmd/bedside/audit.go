package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
	"github.com/bedside/bedside/storage/boltstore"
)

// errChain marks a broken audit trail: the exit status is 1 and the message
// names the first bad record.
var errChain = errors.New("audit trail broken")

const auditUsage = `usage:
  bedside audit verify [--data DIR | --config FILE] [--checkpoints FILE] [--pubkey KEY]...
  bedside audit checkpoints [--data DIR | --config FILE]
  bedside audit pubkey [--data DIR | --config FILE]`

// auditCmd runs the `bedside audit` commands, all offline on the data
// directory.
func auditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return errUsage
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], getenv, stdout, stderr)
	case "checkpoints":
		return auditCheckpoints(ctx, args[1:], getenv, stdout, stderr)
	case "pubkey":
		return auditPubkey(args[1:], getenv, stdout, stderr)
	}
	fmt.Fprintln(stderr, auditUsage)
	return errUsage
}

// loadAuditKey reads the key that signs audit checkpoints, an Ed25519 seed
// kept like the token key: 32 bytes, readable by its owner only. create
// makes it when it does not exist yet, as serve does.
func loadAuditKey(data string, create bool) (key ed25519.PrivateKey, created bool, err error) {
	path := filepath.Join(data, auditKeyFile)
	var seed []byte
	if create {
		seed, created, err = auth.LoadOrCreateKey(path)
	} else {
		seed, err = auth.LoadKey(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), created, nil
}

// openOffline opens the store of a stopped server; hint says what to do
// while it runs.
func openOffline(data, hint string) (*boltstore.Store, error) {
	store, err := boltstore.Open(filepath.Join(data, dbFile), boltstore.Options{})
	if errors.Is(err, boltstore.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", err, hint)
	}
	return store, err
}

// auditPubkey runs `bedside audit pubkey`: the public half of the audit
// key, to keep with the exported checkpoints.
func auditPubkey(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, f := adminFlags("bedside audit pubkey", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	key, _, err := loadAuditKey(cfg.Data, false)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no audit key in %s: `bedside serve` makes it on its first start", cfg.Data)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, audit.FormatPublicKey(key.Public().(ed25519.PublicKey)))
	return nil
}

// auditCheckpoints runs `bedside audit checkpoints`: every stored
// checkpoint as JSON lines, the form verify --checkpoints reads.
func auditCheckpoints(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	fs, f := adminFlags("bedside audit checkpoints", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	store, err := openOffline(cfg.Data, "stop the server, or fetch them from GET /v1/audit/checkpoints")
	if err != nil {
		return err
	}
	defer store.Close()

	enc := json.NewEncoder(stdout)
	return eachCheckpoint(ctx, store, func(cp audit.Checkpoint) error { return enc.Encode(cp) })
}

func eachCheckpoint(ctx context.Context, store storage.Store, fn func(audit.Checkpoint) error) error {
	var after uint64
	for {
		page, err := store.Checkpoints(ctx, after, 1000)
		if err != nil || len(page) == 0 {
			return err
		}
		for _, cp := range page {
			if err := fn(cp); err != nil {
				return err
			}
		}
		after = page[len(page)-1].Seq
	}
}

// pubkeys collects repeated --pubkey flags.
type pubkeys []ed25519.PublicKey

func (p *pubkeys) String() string { return fmt.Sprint(len(*p), " keys") }

func (p *pubkeys) Set(s string) error {
	k, err := audit.ParsePublicKey(s)
	if err != nil {
		return err
	}
	*p = append(*p, k)
	return nil
}

// sourced is a checkpoint with where it was read, for messages.
type sourced struct {
	audit.Checkpoint
	from string
}

// auditVerify runs `bedside audit verify`: it reads the whole trail from the
// data directory, offline, checks every link of the hash chain, every
// checkpoint's signature, and every record a checkpoint names.
func auditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, f := adminFlags("bedside audit verify", stderr)
	file := fs.String("checkpoints", "", "JSON-lines `file` of checkpoints kept elsewhere")
	var keys pubkeys
	fs.Var(&keys, "pubkey", "public `key` the checkpoints are signed with (bedside audit pubkey); "+
		"repeat for old keys (default: the key in the data directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, auditUsage)
		return errUsage
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	keyNote, err := verifyKeys(&keys, cfg.Data)
	if err != nil {
		return err
	}
	store, err := openOffline(cfg.Data, "stop the server first; the audit trail is verified offline")
	if err != nil {
		return err
	}
	defer store.Close()

	cps, anchor, err := gatherCheckpoints(ctx, store, *file)
	if err != nil {
		return err
	}
	v, err := expectCheckpoints(cps, anchor, keys)
	if err != nil {
		return err
	}
	if err := verifyRecords(ctx, store, v); err != nil {
		return err
	}
	verifyReport(stdout, v, anchor, keyNote)
	return nil
}

// verifyKeys picks the keys checkpoints are checked with: those given, or
// the one in the data directory. It says which, for the report.
func verifyKeys(keys *pubkeys, data string) (string, error) {
	if len(*keys) > 0 {
		return "the keys given", nil
	}
	key, _, err := loadAuditKey(data, false)
	if errors.Is(err, os.ErrNotExist) {
		return "no key", nil
	}
	if err != nil {
		return "", err
	}
	*keys = append(*keys, key.Public().(ed25519.PublicKey))
	path := filepath.Join(data, auditKeyFile)
	return "the key in " + path + " (give --pubkey to check with one kept elsewhere)", nil
}

// gatherCheckpoints reads the stored checkpoints, the anchor and those in
// file, if named.
func gatherCheckpoints(ctx context.Context, store storage.Store, file string) ([]sourced, *sourced, error) {
	st, err := store.AuditState(ctx)
	if err != nil {
		return nil, nil, err
	}
	var anchor *sourced
	if st.Anchor.Seq > 0 {
		anchor = &sourced{st.Anchor, "the retention anchor"}
	}
	var cps []sourced
	err = eachCheckpoint(ctx, store, func(cp audit.Checkpoint) error {
		cps = append(cps, sourced{cp, "the store"})
		return nil
	})
	if err != nil || file == "" {
		return cps, anchor, err
	}
	kept, err := readCheckpointFile(file)
	return append(cps, kept...), anchor, err
}

// readCheckpointFile reads JSON lines of checkpoints; blank lines are
// skipped.
func readCheckpointFile(path string) ([]sourced, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []sourced
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), audit.MaxCheckpointLine+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		cp, err := audit.ParseCheckpoint([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		out = append(out, sourced{cp, fmt.Sprintf("%s line %d", path, n)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// expectCheckpoints checks each checkpoint's signature and readies a
// verifier that expects them.
func expectCheckpoints(cps []sourced, anchor *sourced, keys pubkeys) (*audit.Verifier, error) {
	var v audit.Verifier
	all := cps
	if anchor != nil {
		all = append([]sourced{*anchor}, cps...)
	}
	if len(all) > 0 && len(keys) == 0 {
		return nil, fmt.Errorf("%d checkpoints but no key to check them: give --pubkey, or keep %s in the data "+
			"directory", len(all), auditKeyFile)
	}
	for _, cp := range all {
		if err := checkSignature(cp, keys); err != nil {
			return nil, err
		}
	}
	if anchor != nil {
		if err := v.From(anchor.Checkpoint); err != nil {
			return nil, fmt.Errorf("%w: %w", errChain, err)
		}
	}
	for _, cp := range cps {
		if err := v.Expect(cp.Checkpoint); err != nil {
			return nil, fmt.Errorf("%w: %w (%s)", errChain, err, cp.from)
		}
	}
	return &v, nil
}

func checkSignature(cp sourced, keys pubkeys) error {
	for _, k := range keys {
		if audit.KeyIDOf(k) == cp.KeyID {
			if err := cp.Verify(k); err != nil {
				return fmt.Errorf("%w: the checkpoint of record %d from %s is forged: %w",
					errChain, cp.Seq, cp.from, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: the checkpoint of record %d from %s is signed by key %s, which is not one given",
		errChain, cp.Seq, cp.from, cp.KeyID)
}

// verifyRecords feeds every record to v, then finishes it.
func verifyRecords(ctx context.Context, store storage.Store, v *audit.Verifier) error {
	var after uint64
	for {
		page, err := store.AuditRecords(ctx, after, 1000)
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
		after = page[len(page)-1].Seq
	}
	if err := v.Finish(); err != nil {
		return fmt.Errorf("%w: %w", errChain, err)
	}
	return nil
}

// verifyReport says what was checked.
func verifyReport(w io.Writer, v *audit.Verifier, anchor *sourced, keyNote string) {
	head := v.Head()
	fmt.Fprintf(w, "audit trail intact: %d records, head %x\n", v.Count(), head[:])
	if anchor != nil {
		gone := anchor.Seq
		if v.Count() > 0 {
			gone = v.First() - 1
		}
		fmt.Fprintf(w, "records 1-%d were deleted by audit retention; the trail goes on from the checkpoint "+
			"of record %d, signed %s\n", gone, anchor.Seq, anchor.Time.Format(time.RFC3339))
	}
	newest, ok := v.Newest()
	if !ok {
		fmt.Fprintln(w, "no checkpoint: a trail cut short at its end cannot be told from a whole one; "+
			"keep the head above elsewhere")
		return
	}
	fmt.Fprintf(w, "%d checkpoints verified with %s; %d met their record, the newest is of record %d, "+
		"signed %s\n", v.Expected(), keyNote, v.Checked(), newest.Seq, newest.Time.Format(time.RFC3339))
	if newest.Seq < v.Last() {
		fmt.Fprintf(w, "records %d-%d are newer than every checkpoint\n", newest.Seq+1, v.Last())
	}
}

var _ flag.Value = (*pubkeys)(nil)
