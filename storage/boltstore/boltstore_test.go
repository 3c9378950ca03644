package boltstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/storagetest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openAt opens a store at path and closes it when t ends.
func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openTest opens a store in a new temporary directory.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "bedside.db"), opts)
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return openTest(t, Options{}) })
}

func TestOpenCreatesOnlyThePrivateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bedside.db")
	openAt(t, path, Options{})

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if d := cmp.Diff([]string{"bedside.db"}, names); d != "" {
		t.Errorf("directory after Open (-want +got):\n%s", d)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
}

func TestOpenRefusals(t *testing.T) {
	dir := t.TempDir()
	held := filepath.Join(dir, "held.db")
	openAt(t, held, Options{})
	future := boltFile(t, filepath.Join(dir, "future.db"), bucketMeta, keyLayout, []byte("bedside-boltstore-99"))
	foreign := boltFile(t, filepath.Join(dir, "foreign.db"), []byte("things"), []byte("k"), []byte("v"))

	for _, tc := range []struct {
		name string
		path string
		opts Options
		want error
	}{
		{"LockedByAnother", held, Options{LockTimeout: 50 * time.Millisecond}, ErrLocked},
		{"UnknownLayout", future, Options{}, ErrLayout},
		{"ForeignFile", foreign, Options{}, ErrLayout},
		{"NegativeMaxBatch", filepath.Join(dir, "a.db"), Options{MaxBatch: -1}, ErrInvalid},
		{"NegativeMaxPage", filepath.Join(dir, "b.db"), Options{MaxPage: -1}, ErrInvalid},
		{"MissingDirectory", filepath.Join(dir, "no", "c.db"), Options{}, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.path, tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "a.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with bad options created the file (stat: %v)", err)
	}
}

// boltFile makes a bbolt file holding one key in one bucket.
func boltFile(t *testing.T, path string, bucket, key, value []byte) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		return b.Put(key, value)
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	return path
}

// TestReopenKeepsEverything writes one of each record, closes the store and
// reads it all back from a new one on the same file.
func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bedside.db")
	s := openAt(t, path, Options{})
	ctx := t.Context()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

	user := storage.User{ID: "pat", Role: "patient", CreatedAt: t0}
	dev := storage.Device{User: "pat", ID: "phone", SigningKey: []byte{1}, ExchangeKey: []byte{2}, CreatedAt: t0}
	sess := storage.Session{ID: "s1", Kind: "chat", State: "open", CreatedAt: t0,
		Members: []storage.Member{{User: "pat", Role: "patient"}, {User: "doc", Role: "clinician"}}}
	grant := storage.Consent{ID: "g1", User: "pat", Kind: storage.ConsentGrant, Scope: "chat", PolicyVersion: "v3", At: t0}
	m := storage.Message{SessionID: "s1", ClientMsgID: "c1", SenderUser: "pat", SenderDevice: "phone",
		Recipients: map[string][]byte{"laptop": []byte("hdr")}, Body: []byte("sealed")}

	must(t, s.PutUser(ctx, user))
	must(t, s.PutDevice(ctx, dev, 16))
	must(t, s.CreateSession(ctx, sess))
	_, err := s.AddConsent(ctx, grant)
	must(t, err)
	res, err := s.Append(ctx, storage.AppendRequest{Message: m, RequireConsent: []string{"pat"}})
	must(t, err)
	_, _, err = s.MoveReadCursor(ctx, "s1", "doc", 1)
	must(t, err)
	must(t, s.Close())

	s = openAt(t, path, Options{})
	gotUser, err := s.GetUser(ctx, "pat")
	must(t, err)
	gotDev, err := s.GetDevice(ctx, "pat", "phone")
	must(t, err)
	gotSess, err := s.GetSession(ctx, "s1")
	must(t, err)
	gotMsgs, err := s.Messages(ctx, "s1", 0, 10)
	must(t, err)
	gotCursors, err := s.ReadCursors(ctx, "s1")
	must(t, err)
	gotConsents, err := s.Consents(ctx, "pat")
	must(t, err)
	again, err := s.Append(ctx, storage.AppendRequest{Message: m})
	must(t, err)

	sess.HeadSeq = 1
	m.Seq, m.TS = res.Seq, res.TS
	res.Duplicate = true
	for _, c := range []struct {
		what      string
		want, got any
	}{
		{"user", user, gotUser},
		{"device", dev, gotDev},
		{"session", sess, gotSess},
		{"messages", []storage.Message{m}, gotMsgs},
		{"cursors", map[string]uint64{"doc": 1}, gotCursors},
		{"consents", []storage.Consent{grant}, gotConsents},
		{"retry", res, again},
	} {
		if d := cmp.Diff(c.want, c.got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s after reopen (-want +got):\n%s", c.what, d)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	s := openTest(t, Options{})
	ctx := t.Context()
	must(t, s.CreateSession(ctx, storage.Session{ID: "s1", Members: []storage.Member{{User: "u"}}}))
	long := strings.Repeat("x", MaxIDLen+1)
	grant := storage.Consent{User: "u", Kind: "grant", Scope: "chat", PolicyVersion: "1"}
	with := func(change func(*storage.Consent)) storage.Consent {
		c := grant
		change(&c)
		return c
	}
	twice := []storage.Member{{User: "u"}, {User: "u"}}
	good := storage.Message{SessionID: "s1", ClientMsgID: "c", SenderUser: "u", SenderDevice: "d"}
	appendWith := func(change func(*storage.AppendRequest)) error {
		req := storage.AppendRequest{Message: good}
		req.Message.Recipients = map[string][]byte{"r": nil}
		change(&req)
		_, err := s.Append(ctx, req)
		return err
	}
	addConsent := func(c storage.Consent) error {
		_, err := s.AddConsent(ctx, c)
		return err
	}

	for name, err := range map[string]error{
		"PutUser empty":           s.PutUser(ctx, storage.User{}),
		"PutUser NUL":             s.PutUser(ctx, storage.User{ID: "a\x00b"}),
		"PutUser long":            s.PutUser(ctx, storage.User{ID: long}),
		"PutDevice no user":       s.PutDevice(ctx, storage.Device{ID: "d"}, 16),
		"PutDevice no id":         s.PutDevice(ctx, storage.Device{User: "u"}, 16),
		"CreateSession no id":     s.CreateSession(ctx, storage.Session{}),
		"CreateSession head":      s.CreateSession(ctx, storage.Session{ID: "s2", HeadSeq: 3}),
		"CreateSession member":    s.CreateSession(ctx, storage.Session{ID: "s2", Members: []storage.Member{{}}}),
		"CreateSession twice":     s.CreateSession(ctx, storage.Session{ID: "s2", Members: twice}),
		"Append no session":       appendWith(func(r *storage.AppendRequest) { r.Message.SessionID = "" }),
		"Append no client id":     appendWith(func(r *storage.AppendRequest) { r.Message.ClientMsgID = "" }),
		"Append no sender":        appendWith(func(r *storage.AppendRequest) { r.Message.SenderUser = "" }),
		"Append no device":        appendWith(func(r *storage.AppendRequest) { r.Message.SenderDevice = "" }),
		"Append NUL device":       appendWith(func(r *storage.AppendRequest) { r.Message.SenderDevice = "d\x00" }),
		"Append empty recipient":  appendWith(func(r *storage.AppendRequest) { r.Message.Recipients[""] = nil }),
		"Append empty consent":    appendWith(func(r *storage.AppendRequest) { r.RequireConsent = []string{""} }),
		"AddConsent no user":      addConsent(with(func(c *storage.Consent) { c.User = "" })),
		"AddConsent no kind":      addConsent(with(func(c *storage.Consent) { c.Kind = "" })),
		"AddConsent no scope":     addConsent(with(func(c *storage.Consent) { c.Scope = "" })),
		"AddConsent no policy":    addConsent(with(func(c *storage.Consent) { c.PolicyVersion = "" })),
		"AddConsent grant naming": addConsent(with(func(c *storage.Consent) { c.Withdraws = "g" })),
		"AddConsent no withdraws": addConsent(storage.Consent{User: "u", Kind: "withdraw"}),
		"AddConsent long id":      addConsent(with(func(c *storage.Consent) { c.ID = long })),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if sess, err := s.GetSession(ctx, "s1"); err != nil || sess.HeadSeq != 0 {
		t.Errorf("after refused appends: %+v, %v; want head 0", sess, err)
	}
	if _, err := s.GetSession(ctx, "s2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused session was stored: %v", err)
	}
}

func TestMoveReadCursorOfNonMember(t *testing.T) {
	s := openTest(t, Options{})
	must(t, s.CreateSession(t.Context(), storage.Session{ID: "s1", Members: []storage.Member{{User: "pat"}}}))
	_, _, err := s.MoveReadCursor(t.Context(), "s1", "eve", 0)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("MoveReadCursor of a non-member: %v, want ErrNotFound", err)
	}
}

func TestListSessionsTiesInIDOrder(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := openTest(t, Options{Now: func() time.Time { return t0 }})
	for _, id := range []string{"c", "a", "b"} {
		must(t, s.CreateSession(t.Context(), storage.Session{ID: id, Members: []storage.Member{{User: "u"}}}))
	}
	list, err := s.ListSessions(t.Context(), "u")
	must(t, err)
	var ids []string
	for _, sess := range list {
		ids = append(ids, sess.ID)
		if !sess.CreatedAt.Equal(t0) || sess.State != "open" {
			t.Errorf("session %s: CreatedAt %v, State %q; want the clock's time and open", sess.ID, sess.CreatedAt, sess.State)
		}
	}
	if d := cmp.Diff([]string{"a", "b", "c"}, ids); d != "" {
		t.Errorf("ListSessions ids (-want +got):\n%s", d)
	}
}

func TestMessagesPageIsClamped(t *testing.T) {
	s := openTest(t, Options{MaxPage: 3})
	ctx := t.Context()
	must(t, s.CreateSession(ctx, storage.Session{ID: "s1"}))
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		_, err := s.Append(ctx, storage.AppendRequest{Message: storage.Message{
			SessionID: "s1", ClientMsgID: id, SenderUser: "u", SenderDevice: "d"}})
		must(t, err)
	}
	for _, limit := range []int{-5, 0, 3, 4, 1 << 40} {
		msgs, err := s.Messages(ctx, "s1", 0, limit)
		must(t, err)
		if len(msgs) != 3 {
			t.Errorf("Messages(limit %d) returned %d, want 3", limit, len(msgs))
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
