package e2e

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bedside/bedside/internal/testserver"
	"github.com/bedside/bedside/storage/audit"
	"github.com/bedside/bedside/storage/boltstore"
)

// auditTool runs `bedside audit ...` on a stopped server's data directory.
type auditTool struct {
	t    *testing.T
	bin  string
	data string
}

func newAuditTool(t *testing.T, s *testserver.Server) *auditTool {
	return &auditTool{t: t, bin: testserver.Binary(t, "./cmd/bedside"), data: s.DataDir}
}

// run returns the command's output and whether it exited 0.
func (a *auditTool) run(args ...string) (string, bool) {
	a.t.Helper()
	cmd := exec.Command(a.bin, append(append([]string{"audit"}, args[0], "--data", a.data), args[1:]...)...)
	out, err := cmd.CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		a.t.Fatal(err)
	}
	return string(out), err == nil
}

func (a *auditTool) must(args ...string) string {
	a.t.Helper()
	out, ok := a.run(args...)
	if !ok {
		a.t.Fatalf("bedside audit %v failed:\n%s", args, out)
	}
	return out
}

// export writes the stored checkpoints to a file outside the data
// directory, as an operator keeps them, and returns its path.
func (a *auditTool) export() string {
	a.t.Helper()
	path := filepath.Join(a.t.TempDir(), "checkpoints.jsonl")
	if err := os.WriteFile(path, []byte(a.must("checkpoints")), 0o600); err != nil {
		a.t.Fatal(err)
	}
	return path
}

// tamper changes the stopped server's store behind its back.
func tamper(t *testing.T, data string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	d, err := bolt.Open(filepath.Join(data, "bedside.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// clearBucket deletes every key of a bucket.
func clearBucket(tx *bolt.Tx, name string) error {
	if err := tx.DeleteBucket([]byte(name)); err != nil {
		return err
	}
	_, err := tx.CreateBucket([]byte(name))
	return err
}

// TestAuditVerify records real actions on a hub that signs a checkpoint
// every two records, stops it, exports the checkpoints and the public key,
// and checks the trail offline with `bedside audit verify`. Then each kind
// of tampering, on a fresh copy of the store, must be found and named at
// the right record.
func TestAuditVerify(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bedside.yaml")
	os.WriteFile(cfg, []byte("audit: {checkpointEvery: 2}\n"), 0o600)
	s := testserver.Start(t, testserver.Options{Args: []string{"--config", cfg}})
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	a.history(pat, sid)
	s.Stop(t)
	seed := []byte(mustRead(t, filepath.Join(s.DataDir, "audit.key")))
	for _, form := range []string{string(seed), hex.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed)} {
		if strings.Contains(s.Logs(), form) {
			t.Fatal("the audit key is in the log")
		}
	}

	tool := newAuditTool(t, s)
	pub := strings.TrimSpace(tool.must("pubkey"))
	kept := tool.export()
	if out := tool.must("verify"); !strings.Contains(out, "audit trail intact: 5 records") ||
		!strings.Contains(out, "checkpoints verified with the key in") || !strings.Contains(out, "of record 5") {
		t.Fatalf("intact trail:\n%s", out)
	}

	db := filepath.Join(s.DataDir, "bedside.db")
	pristine, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	keptLines := mustRead(t, kept)
	cases := []struct {
		name  string
		store func(tx *bolt.Tx) error // changes the store, if not nil
		kept  func(string) string     // changes the exported checkpoints, if not nil
		want  []string                // in the output; none: intact
	}{
		{name: "intact"},
		{name: "edit a byte", store: func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("audit"))
			return b.Put(seqKey(3), bytes.Replace(b.Get(seqKey(3)), []byte(`"ok"`), []byte(`"no"`), 1))
		}, want: []string{"at record 3", "changed"}},
		{name: "delete a record", store: func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("audit")).Delete(seqKey(4))
		}, want: []string{"at record 4", "removed"}},
		{name: "swap two", store: func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("audit"))
			two, three := append([]byte(nil), b.Get(seqKey(2))...), append([]byte(nil), b.Get(seqKey(3))...)
			if err := b.Put(seqKey(2), three); err != nil {
				return err
			}
			return b.Put(seqKey(3), two)
		}, want: []string{"at record 2", "reordered"}},
		{name: "truncate the tail, checkpoints removed from the store too", store: func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte("audit")).Delete(seqKey(5)); err != nil {
				return err
			}
			return clearBucket(tx, "checkpoints")
		}, want: []string{"at record 5: missing", "covers the trail up to record 5", "tail truncated"}},
		{name: "rewrite and rehash, checkpoints removed from the store", store: func(tx *bolt.Tx) error {
			if err := rewriteFrom(tx, 2); err != nil {
				return err
			}
			return clearBucket(tx, "checkpoints")
		}, want: []string{"differs from the checkpoint", "rewritten at or before it"}},
		{name: "forged checkpoint signature", kept: func(s string) string {
			return forge(t, s, func(cp *audit.Checkpoint) { cp.Sig[5] ^= 1 })
		}, want: []string{"is forged", "line 1"}},
		{name: "checkpoint moved to another record", kept: func(s string) string {
			return forge(t, s, func(cp *audit.Checkpoint) { cp.Seq-- })
		}, want: []string{"is forged"}},
		{name: "checkpoint signed by another key", kept: func(s string) string {
			other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
			return forge(t, s, func(cp *audit.Checkpoint) { *cp = audit.Sign(other, cp.Seq, cp.Hash, cp.Time) })
		}, want: []string{"signed by key", "which is not one given"}},
		{name: "garbage in the checkpoint file", kept: func(s string) string { return s + "{\"seq\":\n" },
			want: []string{"checkpoints.jsonl line", "malformed checkpoint"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(db, pristine, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.store != nil {
				tamper(t, s.DataDir, tc.store)
			}
			lines := keptLines
			if tc.kept != nil {
				lines = tc.kept(lines)
			}
			if err := os.WriteFile(kept, []byte(lines), 0o600); err != nil {
				t.Fatal(err)
			}
			out, ok := tool.run("verify", "--checkpoints", kept, "--pubkey", pub)
			if len(tc.want) == 0 {
				if !ok || !strings.Contains(out, "audit trail intact: 5 records") {
					t.Fatalf("intact trail refused:\n%s", out)
				}
				return
			}
			if ok {
				t.Fatalf("tampering went unnoticed:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// rewriteFrom changes record seq's actor and rehashes every record from it,
// as someone without the key would to hide a change from the chain alone.
func rewriteFrom(tx *bolt.Tx, seq uint64) error {
	b := tx.Bucket([]byte("audit"))
	var prev *audit.Record
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r audit.Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if r.Seq == seq {
			r.Actor = "eve"
		}
		if r.Seq >= seq {
			r.Link(prev)
			nv, _ := json.Marshal(r)
			if err := b.Put(k, nv); err != nil {
				return err
			}
		}
		prev = &r
	}
	return nil
}

// forge changes the first checkpoint of a JSON-lines export.
func forge(t *testing.T, lines string, fn func(*audit.Checkpoint)) string {
	first, rest, _ := strings.Cut(lines, "\n")
	cp, err := audit.ParseCheckpoint([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	fn(&cp)
	b, _ := json.Marshal(cp)
	return string(b) + "\n" + rest
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuditVerifyAfterRetention deletes the records of a first run, as audit
// retention will, and checks that the rest verifies against the checkpoints
// exported before the deletion; then that removing one more record, or the
// anchor, is still found.
func TestAuditVerifyAfterRetention(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	a.history(pat, sid) // records 1-5, signed at shutdown
	s.Stop(t)
	cutoff := time.Now()
	s.Restart(t)
	a.history(doc, sid)
	a.history(pat, sid) // records 6-7
	s.Stop(t)

	tool := newAuditTool(t, s)
	pub := strings.TrimSpace(tool.must("pubkey"))
	kept := tool.export()
	store, err := boltstore.Open(filepath.Join(s.DataDir, "bedside.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := store.DeleteAuditBefore(t.Context(), cutoff, 2)
	if cerr := store.Close(); err != nil || cerr != nil || n != 5 {
		t.Fatalf("deleted %d: %v %v", n, err, cerr)
	}

	out := tool.must("verify", "--checkpoints", kept, "--pubkey", pub)
	for _, w := range []string{"audit trail intact: 2 records", "records 1-5 were deleted by audit retention",
		"the newest is of record 7"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}

	s.Restart(t) // the trail goes on
	a.history(doc, sid)
	s.Stop(t)
	if out := tool.must("verify", "--checkpoints", kept, "--pubkey", pub); !strings.Contains(out, "intact: 3 records") {
		t.Fatalf("after more records:\n%s", out)
	}

	tamper(t, s.DataDir, func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit")).Delete(seqKey(6)) })
	if out, ok := tool.run("verify", "--checkpoints", kept, "--pubkey", pub); ok ||
		!strings.Contains(out, "at record 6: next is 7") {
		t.Fatalf("a record removed after retention went unnoticed:\n%s", out)
	}
	tamper(t, s.DataDir, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("auditanchor")) })
	if out, ok := tool.run("verify"); ok || !strings.Contains(out, "at record 1: next is 7") {
		t.Fatalf("records removed from the start went unnoticed:\n%s", out)
	}
}
