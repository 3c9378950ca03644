package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/storage/audit"
	"github.com/bedside/bedside/storage/boltstore"
)

var testAuditKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))

// signingEnv is a hub that signs checkpoints with testAuditKey as cfg says.
func signingEnv(t *testing.T, cfg hub.AuditConfig, now func() time.Time) *env {
	return newEnv(t, hub.Config{}, func(o *hub.Options) {
		o.AuditKey, o.Audit, o.Now = testAuditKey, cfg, now
	})
}

// checkpoints returns the stored checkpoints, each verified with the key.
func (e *env) checkpoints(t *testing.T) []audit.Checkpoint {
	t.Helper()
	cps, err := e.store.Checkpoints(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		if err := cp.Verify(testAuditKey.Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("checkpoint of record %d: %v", cp.Seq, err)
		}
	}
	return cps
}

func (e *env) auditHead(t *testing.T) uint64 {
	t.Helper()
	st, err := e.store.AuditState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Head
}

// TestCheckpointEveryNRecords: the records count triggers a checkpoint long
// before the interval, signed at the hub's clock.
func TestCheckpointEveryNRecords(t *testing.T) {
	clk := newClockAt(time.Now().Round(time.Second))
	e := signingEnv(t, hub.AuditConfig{CheckpointEvery: 3, CheckpointInterval: time.Hour}, clk.now)
	e.user("doc", "clinician") // one record
	if cps := e.checkpoints(t); len(cps) != 0 {
		t.Fatalf("a checkpoint after one record: %+v", cps)
	}
	e.user("pat", "patient")
	e.user("ann", "patient") // three

	waitFor(t, func() bool { return len(e.checkpoints(t)) == 1 })
	cp := e.checkpoints(t)[0]
	if cp.Seq < 3 || !cp.Time.Equal(clk.now()) || cp.KeyID != audit.KeyIDOf(testAuditKey.Public().(ed25519.PublicKey)) {
		t.Fatalf("checkpoint %+v", cp)
	}
	if !strings.Contains(e.metricsText(t), "bedside_audit_checkpoints_total 1") ||
		!strings.Contains(e.metricsText(t), "bedside_audit_records_total 3") {
		t.Errorf("metrics:\n%s", e.metricsText(t))
	}
}

// TestCheckpointInterval: with few records, the interval triggers one.
func TestCheckpointInterval(t *testing.T) {
	e := signingEnv(t, hub.AuditConfig{CheckpointInterval: time.Second}, nil)
	e.user("doc", "clinician")
	waitFor(t, func() bool { return len(e.checkpoints(t)) == 1 })
	if cp := e.checkpoints(t)[0]; cp.Seq != 1 {
		t.Fatalf("checkpoint of record %d, want 1", cp.Seq)
	}
}

// TestCheckpointOnlyWhenNew: no second checkpoint of the same head.
func TestCheckpointOnlyWhenNew(t *testing.T) {
	e := signingEnv(t, hub.AuditConfig{}, nil)
	ctx := context.Background()
	if _, ok, err := e.hub.Checkpoint(ctx); ok || err != nil {
		t.Fatalf("a checkpoint of an empty trail: %v %v", ok, err)
	}
	e.user("doc", "clinician")
	cp, ok, err := e.hub.Checkpoint(ctx)
	if !ok || err != nil || cp.Seq != 1 {
		t.Fatalf("first: %+v %v %v", cp, ok, err)
	}
	if _, ok, err := e.hub.Checkpoint(ctx); ok || err != nil {
		t.Fatalf("second, with nothing new: %v %v", ok, err)
	}
}

// TestCheckpointAtShutdown: a clean shutdown signs the trail's head.
func TestCheckpointAtShutdown(t *testing.T) {
	e := signingEnv(t, hub.AuditConfig{}, nil)
	e.user("doc", "clinician")
	e.user("pat", "patient")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cps := e.checkpoints(t)
	if len(cps) != 1 || cps[0].Seq != e.auditHead(t) {
		t.Fatalf("after shutdown: %+v, head %d", cps, e.auditHead(t))
	}
}

// TestNoKeyNoCheckpoints: a hub without an audit key signs nothing.
func TestNoKeyNoCheckpoints(t *testing.T) {
	e := newEnv(t, hub.Config{})
	e.user("doc", "clinician")
	if _, ok, err := e.hub.Checkpoint(context.Background()); ok || err != nil {
		t.Fatalf("without a key: %v %v", ok, err)
	}
}

// TestCheckpointExport reads checkpoints back over the API and checks each
// line as `bedside audit verify --checkpoints` would.
func TestCheckpointExport(t *testing.T) {
	e := signingEnv(t, hub.AuditConfig{}, nil)
	ines := e.token("ines", "auditor")
	var want []audit.Checkpoint
	for _, id := range []string{"a", "b", "c"} {
		e.user(id, "patient")
		cp, _, err := e.hub.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, cp)
	}

	get := func(query string) (int, http.Header, []audit.Checkpoint) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/audit/checkpoints"+query, nil)
		req.Header.Set("Authorization", "Bearer "+ines)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out []audit.Checkpoint
		sc := bufio.NewScanner(resp.Body)
		for resp.StatusCode == 200 && sc.Scan() {
			cp, err := audit.ParseCheckpoint(sc.Bytes())
			if err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if err := cp.Verify(testAuditKey.Public().(ed25519.PublicKey)); err != nil {
				t.Fatal(err)
			}
			out = append(out, cp)
		}
		return resp.StatusCode, resp.Header, out
	}
	code, hdr, all := get("")
	if code != 200 || len(all) != 3 || hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %v, %d checkpoints", code, hdr, len(all))
	}
	for i := range all {
		if all[i].Seq != want[i].Seq || !bytes.Equal(all[i].Sig, want[i].Sig) {
			t.Errorf("checkpoint %d: %+v, want %+v", i, all[i], want[i])
		}
	}
	after := hdr.Get("X-Bedside-Next-After")
	if code, _, rest := get("?after=" + after); code != 200 || len(rest) != 0 {
		t.Errorf("after the last: %d, %d", code, len(rest))
	}
	if code, hdr, page := get("?limit=1"); code != 200 || len(page) != 1 || hdr.Get("X-Bedside-Next-After") == "" {
		t.Errorf("one page: %d, %d", code, len(page))
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?after=-1"} {
		if code, _, _ := get(q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
}

func TestAuditConfigRefused(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "bedside.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, tc := range []struct {
		name string
		opts func(*hub.Options)
	}{
		{"negative every", func(o *hub.Options) { o.Audit.CheckpointEvery = -1 }},
		{"every too large", func(o *hub.Options) { o.Audit.CheckpointEvery = 2_000_000 }},
		{"interval too short", func(o *hub.Options) { o.Audit.CheckpointInterval = time.Millisecond }},
		{"interval too long", func(o *hub.Options) { o.Audit.CheckpointInterval = 48 * time.Hour }},
		{"short key", func(o *hub.Options) { o.AuditKey = testAuditKey[:10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := hub.Options{Store: store, TokenKey: []byte("k")}
			tc.opts(&opts)
			if _, err := hub.New(opts); !errors.Is(err, hub.ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
		})
	}
}
