package e2e

import (
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/bedside/bedside/internal/testserver"
)

// TestAuditVerify records real actions, stops the server and checks the
// trail offline with `bedside audit verify`; then changes a byte of one
// record and removes another, and expects each to be found and named.
func TestAuditVerify(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc, pat := a.user("doc", "clinician"), a.user("pat", "patient")
	a.consent(pat)
	sid := a.session(doc, pat)
	a.history(pat, sid)
	s.Stop(t)

	bin := testserver.Binary(t, "./cmd/bedside")
	verify := func() (string, error) {
		out, err := exec.Command(bin, "audit", "verify", "--data", s.DataDir).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "audit trail intact: 5 records") {
		t.Fatalf("intact trail: %v\n%s", err, out)
	}

	db := filepath.Join(s.DataDir, "bedside.db")
	tamper := func(fn func(b *bolt.Bucket) error) {
		t.Helper()
		d, err := bolt.Open(db, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte("audit"))) }); err != nil {
			t.Fatal(err)
		}
	}
	key := func(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

	var saved []byte
	tamper(func(b *bolt.Bucket) error {
		saved = append([]byte(nil), b.Get(key(3))...)
		return b.Put(key(3), []byte(strings.Replace(string(saved), `"outcome":"ok"`, `"outcome":"no"`, 1)))
	})
	if out, err := verify(); err == nil || !strings.Contains(out, "at record 3") {
		t.Fatalf("an edited record went unnoticed: %v\n%s", err, out)
	}
	tamper(func(b *bolt.Bucket) error {
		if err := b.Put(key(3), saved); err != nil {
			return err
		}
		return b.Delete(key(4))
	})
	if out, err := verify(); err == nil || !strings.Contains(out, "at record 4") || !strings.Contains(out, "removed") {
		t.Fatalf("a removed record went unnoticed: %v\n%s", err, out)
	}
}
