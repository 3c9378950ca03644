package e2e

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

// TestErasureLeavesNoTrace erases a patient on a running hub, then compacts
// the stopped hub's file: neither the patient's envelopes nor their public
// keys, prekeys and device list are anywhere in it, the clinician's
// envelopes are, and the audit trail, which the erasure does not rewrite,
// still verifies.
func TestErasureLeavesNoTrace(t *testing.T) {
	s := testserver.Start(t)
	a := newAPI(t, s)
	doc := a.user("doc", "clinician")
	pat := apiUser{id: "pat", token: s.Token(t, "pat", "patient"), device: "pat-d1"}
	patKey := []byte((rand.Text() + rand.Text())[:32])
	docMark, patMark := "doc-said-"+rand.Text(), "pat-said-"+rand.Text()
	a.must(201, "PUT", "/v1/devices/"+pat.device, pat.token,
		wire.PutDeviceRequest{SigningKey: patKey, ExchangeKey: patKey}, nil)
	marks := keyDirectory(a, pat, patKey)
	a.consent(pat)
	sid := a.session(doc, pat)
	send := func(from apiUser, id, body string) {
		req := wire.SendRequest{ClientMsgID: id, SenderDevice: from.device, Body: []byte(body),
			Recipients: map[string][]byte{doc.device: []byte("h"), pat.device: []byte("h")}}
		a.must(201, "POST", "/v1/sessions/"+sid+"/messages", from.token, req, nil)
	}
	send(doc, "m1", docMark)
	send(pat, "p1", patMark)
	send(doc, "m2", docMark)

	var rep wire.EraseReport
	a.must(200, "POST", "/v1/users/pat/erase", s.Token(t, "root", "admin"), nil, &rep)
	if rep.Deleted.Messages != 1 || rep.Deleted.Devices != 1 || rep.Deleted.Headers != 2 ||
		rep.Deleted.PreKeys != 3 || rep.Deleted.DeviceList != 1 {
		t.Fatalf("erasure report: %+v", rep)
	}
	if got := a.history(doc, sid); len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
		t.Fatalf("history after the erasure: %+v", got)
	}
	a.must(403, "GET", "/v1/sessions", pat.token, nil, nil)
	s.Stop(t)

	// bbolt leaves deleted bytes in free pages until it reuses them;
	// compaction rewrites the file without them.
	bin := testserver.Binary(t, "./cmd/bedside")
	if out, err := exec.Command(bin, "storage", "compact", "--data", s.DataDir).CombinedOutput(); err != nil {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	file, err := os.ReadFile(filepath.Join(s.DataDir, "bedside.db"))
	if err != nil {
		t.Fatal(err)
	}
	marks["the patient's envelope"], marks["the patient's key"] = []byte(patMark), patKey
	for what, b := range marks {
		if bytes.Contains(file, b) {
			t.Errorf("%s is still in the compacted file", what)
		}
	}
	if bytes.Count(file, []byte(docMark)) != 2 {
		t.Errorf("the clinician's envelopes are not both in the file")
	}
	out, err := exec.Command(bin, "audit", "verify", "--data", s.DataDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "intact") {
		t.Fatalf("audit verify after the erasure: %v\n%s", err, out)
	}
}

// keyDirectory uploads prekeys of pat's device, whose keys are both key,
// and pat's device list, all of bytes found nowhere else, and returns them
// by name.
func keyDirectory(a *api, pat apiUser, key []byte) map[string][]byte {
	a.t.Helper()
	mark := func(n int) []byte { return []byte(strings.Repeat(rand.Text(), n/26+1))[:n] }
	spk := wire.PreKey{ID: 1, Key: mark(wire.X25519KeySize), Signature: mark(wire.SignatureSize)}
	kem := wire.PreKey{ID: 2, Key: mark(wire.MLKEM768KeySize), Signature: mark(wire.SignatureSize)}
	ot := wire.PreKey{ID: 3, Key: mark(wire.X25519KeySize), Signature: mark(wire.SignatureSize)}
	a.must(200, "PUT", "/v1/devices/"+pat.device+"/prekeys", pat.token,
		wire.PutPreKeysRequest{SignedPreKey: &spk, KEMPreKey: &kem, OneTime: []wire.PreKey{ot}}, nil)
	list := wire.SignedDeviceList{UserKey: mark(32), Version: 1, Signature: mark(wire.SignatureSize),
		Devices: []wire.DeviceListEntry{{ID: pat.device, SigningKey: key, ExchangeKey: key}}}
	a.must(200, "PUT", "/v1/me/device-list", pat.token, list, nil)
	return map[string][]byte{"the signed prekey": spk.Key, "the ML-KEM prekey": kem.Key,
		"a prekey signature": kem.Signature, "the one-time prekey": ot.Key, "the user key": list.UserKey,
		"the device list's signature": list.Signature}
}
