package hub_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
)

// preKey is a prekey of size bytes: distinct for each id, never all zeros,
// with a signature the hub cannot tell from a real one.
func preKey(id uint32, size int) wire.PreKey {
	k := bytes.Repeat([]byte{byte(id%251) + 1}, size)
	binary.BigEndian.PutUint32(k, id)
	return wire.PreKey{ID: id, Key: k, Signature: bytes.Repeat([]byte{7}, wire.SignatureSize)}
}

func x25519(id uint32) wire.PreKey { return preKey(id, wire.X25519KeySize) }
func mlkem(id uint32) wire.PreKey  { return preKey(id, wire.MLKEM768KeySize) }

// Ids of the signed prekeys preKeysReq uploads.
const spkID, kemID = 1000, 1001

// preKeysReq uploads both signed prekeys and n one-time keys of each kind,
// numbered from first.
func preKeysReq(first, n uint32) wire.PutPreKeysRequest {
	spk, kem := x25519(spkID), mlkem(kemID)
	req := wire.PutPreKeysRequest{SignedPreKey: &spk, KEMPreKey: &kem}
	for id := first; id < first+n; id++ {
		req.OneTime = append(req.OneTime, x25519(id))
		req.KEMOneTime = append(req.KEMOneTime, mlkem(id))
	}
	return req
}

// deviceListReq lists devices as e.user registers them.
func deviceListReq(version uint64, key byte, devices ...string) wire.SignedDeviceList {
	l := wire.SignedDeviceList{UserKey: bytes.Repeat([]byte{key}, 32), Version: version,
		Signature: bytes.Repeat([]byte{key}, wire.SignatureSize)}
	for _, d := range devices {
		l.Devices = append(l.Devices, wire.DeviceListEntry{ID: d, SigningKey: bytes.Repeat([]byte{1}, 32),
			ExchangeKey: bytes.Repeat([]byte{2}, 32)})
	}
	return l
}

func (e *env) putPreKeys(u user, device string, req wire.PutPreKeysRequest) wire.PreKeyCounts {
	e.t.Helper()
	var c wire.PreKeyCounts
	if code := e.do("PUT", "/v1/devices/"+device+"/prekeys", u.token, req, &c); code != 200 {
		e.t.Fatalf("upload prekeys of %s: %d", device, code)
	}
	return c
}

func (e *env) claim(u user, of string, req any) wire.BundleList {
	e.t.Helper()
	var l wire.BundleList
	if code := e.do("POST", "/v1/users/"+of+"/bundles", u.token, req, &l); code != 200 {
		e.t.Fatalf("claim bundles of %s: %d", of, code)
	}
	return l
}

// refusal is a request and the error it must get.
type refusal struct {
	name         string
	method, path string
	token        string
	body         any
	status       int
	code, msg    string // msg: a part of the message, if checked
}

func (e *env) checkRefusals(t *testing.T, cases []refusal) {
	t.Helper()
	for _, c := range cases {
		var werr wire.Error
		got := e.do(c.method, c.path, c.token, c.body, &werr)
		if got != c.status || werr.Code != c.code || !strings.Contains(werr.Message, c.msg) {
			t.Errorf("%s: %d %+v, want %d %s %q", c.name, got, werr, c.status, c.code, c.msg)
		}
	}
}

func TestPreKeysUpload(t *testing.T) {
	e := newEnv(t, hub.Config{})
	pat, doc := e.user("pat", "patient"), e.user("doc", "clinician")
	path := "/v1/devices/pat-phone/prekeys"

	if got := e.putPreKeys(pat, pat.device, wire.PutPreKeysRequest{OneTime: []wire.PreKey{x25519(1)}}); got !=
		(wire.PreKeyCounts{Device: pat.device, OneTime: 1, Low: true}) {
		t.Errorf("one-time keys before signed prekeys: %+v", got)
	}
	got := e.putPreKeys(pat, pat.device, preKeysReq(2, 99))
	if got.OneTime != 100 || got.KEMOneTime != 99 || got.SignedPreKeyID != spkID || got.KEMPreKeyID != kemID ||
		got.SignedPreKeyAt == nil || got.Low {
		t.Errorf("counts after a full batch: %+v", got)
	}
	var again wire.PreKeyCounts
	if code := e.do("GET", path, pat.token, nil, &again); code != 200 || !cmp.Equal(got, again) {
		t.Errorf("GET counts: %d %+v, want %+v", code, again, got)
	}

	bad := func(change func(*wire.PutPreKeysRequest)) wire.PutPreKeysRequest {
		req := preKeysReq(500, 2)
		change(&req)
		return req
	}
	zero := x25519(600)
	zero.Key = make([]byte, wire.X25519KeySize)
	short := x25519(601)
	short.Signature = short.Signature[1:]
	big := preKeysReq(700, 101)
	conflict := preKeysReq(2, 1) // id 2 is stored
	spk := x25519(5000)
	conflict.SignedPreKey = &spk
	e.checkRefusals(t, []refusal{
		{"another user's device", "PUT", "/v1/devices/doc-phone/prekeys", pat.token, preKeysReq(1, 1), 404,
			wire.CodeNotFound, ""},
		{"an unknown device", "PUT", "/v1/devices/nope/prekeys", pat.token, preKeysReq(1, 1), 404,
			wire.CodeNotFound, ""},
		{"counts of another user's device", "GET", "/v1/devices/pat-phone/prekeys", doc.token, nil, 404,
			wire.CodeNotFound, ""},
		{"a bad device id", "PUT", "/v1/devices/-x/prekeys", pat.token, preKeysReq(1, 1), 400,
			wire.CodeBadRequest, ""},
		{"nothing", "PUT", path, pat.token, `{}`, 400, wire.CodeBadRequest, "nothing to upload"},
		{"an unknown field", "PUT", path, pat.token, `{"oneTimeKeys":[]}`, 400, wire.CodeBadRequest, "unknown field"},
		{"id 0", "PUT", path, pat.token, bad(func(r *wire.PutPreKeysRequest) { r.OneTime[1].ID = 0 }), 400,
			wire.CodeBadRequest, "oneTime[1]: id"},
		{"a short X25519 key", "PUT", path, pat.token, bad(func(r *wire.PutPreKeysRequest) {
			r.SignedPreKey.Key = r.SignedPreKey.Key[:31]
		}), 400, wire.CodeBadRequest, "signedPreKey: key must be 32 bytes"},
		{"an ML-KEM key as signed prekey", "PUT", path, pat.token, bad(func(r *wire.PutPreKeysRequest) {
			k := mlkem(9)
			r.SignedPreKey = &k
		}), 400, wire.CodeBadRequest, "signedPreKey: key must be 32 bytes"},
		{"a zero X25519 key", "PUT", path, pat.token, wire.PutPreKeysRequest{OneTime: []wire.PreKey{zero}}, 400,
			wire.CodeBadRequest, "all zeros"},
		{"a short ML-KEM key", "PUT", path, pat.token, bad(func(r *wire.PutPreKeysRequest) {
			r.KEMOneTime[0].Key = r.KEMOneTime[0].Key[1:]
		}), 400, wire.CodeBadRequest, "kemOneTime[0]: key must be 1184 bytes"},
		{"a short signature", "PUT", path, pat.token, wire.PutPreKeysRequest{OneTime: []wire.PreKey{short}}, 400,
			wire.CodeBadRequest, "signature must be 64 bytes"},
		{"a batch over 100", "PUT", path, pat.token, big, 400, wire.CodeBadRequest, "at most 100"},
		{"an id twice", "PUT", path, pat.token, bad(func(r *wire.PutPreKeysRequest) { r.KEMOneTime[1].ID = 500 }),
			409, wire.CodeConflict, "kemOneTime names id 500 twice"},
		{"a stored id", "PUT", path, pat.token, conflict, 409, wire.CodeConflict, "stored"},
		{"a body too large", "PUT", path, pat.token, `{"oneTime":"` + strings.Repeat("A", 300<<10) + `"}`,
			413, wire.CodeTooLarge, ""},
	})
	// The refused uploads changed nothing: not even the signed prekey of
	// the one refused for a stored id.
	var after wire.PreKeyCounts
	e.do("GET", path, pat.token, nil, &after)
	if !cmp.Equal(got, after) {
		t.Errorf("counts after refused uploads: %+v, want %+v", after, got)
	}

	// Up to the cap, and not past it.
	if c := e.putPreKeys(pat, pat.device, preKeysReq(800, 100)); c.OneTime != 200 || c.KEMOneTime != 199 {
		t.Errorf("counts at the cap: %+v", c)
	}
	e.checkRefusals(t, []refusal{{"past the cap", "PUT", path, pat.token, preKeysReq(900, 1), 409,
		wire.CodeConflict, "holds 200 X25519 and 199 ML-KEM one-time prekeys; this upload would pass 200"}})
}

func TestClaimBundles(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat, eve := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("eve", "clinician")
	e.session(doc, pat)
	tablet := "pat-tablet"
	reg := wire.PutDeviceRequest{SigningKey: bytes.Repeat([]byte{3}, 32), ExchangeKey: bytes.Repeat([]byte{4}, 32)}
	if code := e.do("PUT", "/v1/devices/"+tablet, pat.token, reg, nil); code != 201 {
		t.Fatalf("register the tablet: %d", code)
	}
	e.putPreKeys(pat, pat.device, preKeysReq(1, 2))
	e.putPreKeys(pat, tablet, wire.PutPreKeysRequest{OneTime: []wire.PreKey{x25519(1)}})

	got := e.claim(doc, "pat", nil)
	ot := x25519(1)
	want := wire.BundleList{Bundles: []wire.Bundle{{Device: pat.device, SigningKey: bytes.Repeat([]byte{1}, 32),
		ExchangeKey: bytes.Repeat([]byte{2}, 32), SignedPreKey: x25519(spkID), KEMPreKey: mlkem(1),
		KEMOneTime: true, OneTime: &ot}}, Missing: []string{tablet}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("first claim (-want +got):\n%s", d)
	}
	// The patient claims their own devices' bundles too (to seal for their
	// other devices), by name; unknown ids are missing, not an error.
	got = e.claim(pat, "pat", wire.ClaimBundlesRequest{Devices: []string{"zz", pat.device, "doc-phone", tablet}})
	if len(got.Bundles) != 1 || got.Bundles[0].OneTime.ID != 2 || got.Bundles[0].KEMPreKey.ID != 2 ||
		!cmp.Equal(got.Missing, []string{"doc-phone", tablet, "zz"}) {
		t.Errorf("second claim: %+v", got)
	}
	// Supplies exhausted: no one-time key, the last-resort ML-KEM key.
	got = e.claim(doc, "pat", `{"devices":["pat-phone"]}`)
	if len(got.Bundles) != 1 || got.Bundles[0].OneTime != nil || got.Bundles[0].KEMOneTime ||
		got.Bundles[0].KEMPreKey.ID != kemID || len(got.Missing) != 0 {
		t.Errorf("claim of an exhausted device: %+v", got)
	}
	m := e.metricsText(t)
	for _, s := range []string{`bedside_prekeys_claimed_total{kind="x25519"} 2`,
		`bedside_prekeys_claimed_total{kind="mlkem768"} 2`, `bedside_prekeys_exhausted_total{kind="x25519"} 1`,
		`bedside_prekeys_exhausted_total{kind="mlkem768"} 1`} {
		if !strings.Contains(m, s) {
			t.Errorf("metrics lack %s", s)
		}
	}

	// A retired device is never handed out, and its prekeys are gone.
	if code := e.do("DELETE", "/v1/devices/"+pat.device, pat.token, nil, nil); code != 200 {
		t.Fatalf("retire the phone: %d", code)
	}
	if got := e.claim(doc, "pat", nil); len(got.Bundles) != 0 || !cmp.Equal(got.Missing, []string{tablet}) {
		t.Errorf("claim after the phone was retired: %+v", got)
	}
	if _, err := e.store.PreKeyCounts(t.Context(), "pat", pat.device); err == nil {
		t.Errorf("the retired phone's prekeys are still counted")
	}

	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("d", i)
	}
	e.checkRefusals(t, []refusal{
		{"a stranger", "POST", "/v1/users/pat/bundles", eve.token, nil, 404, wire.CodeNotFound, "user pat"},
		{"an unknown user", "POST", "/v1/users/nobody/bundles", doc.token, nil, 404, wire.CodeNotFound, ""},
		{"a bad user id", "POST", "/v1/users/-pat/bundles", doc.token, nil, 400, wire.CodeBadRequest, ""},
		{"an unknown field", "POST", "/v1/users/pat/bundles", doc.token, `{"device":["x"]}`, 400,
			wire.CodeBadRequest, "unknown field"},
		{"a device twice", "POST", "/v1/users/pat/bundles", doc.token, `{"devices":["a","a"]}`, 400,
			wire.CodeBadRequest, "twice"},
		{"a bad device id", "POST", "/v1/users/pat/bundles", doc.token, `{"devices":["a/b"]}`, 400,
			wire.CodeBadRequest, "device id"},
		{"too many devices", "POST", "/v1/users/pat/bundles", doc.token, wire.ClaimBundlesRequest{Devices: many},
			400, wire.CodeBadRequest, "at most 100"},
	})
}

// TestClaimBundlesConcurrently claims 60 bundles over HTTP, 20 requests at
// a time, from a device with 50 one-time keys of each kind: every key is
// handed out once, and the last 10 bundles have none.
func TestClaimBundlesConcurrently(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.session(doc, pat)
	e.putPreKeys(pat, pat.device, preKeysReq(1, 50))

	const claimers, each = 20, 3
	bundles := make(chan wire.Bundle, claimers*each)
	errs := make(chan error, claimers*each)
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			for range each {
				b, err := claimOnce(e, doc.token)
				if err != nil {
					errs <- err
					continue
				}
				bundles <- b
			}
		})
	}
	wg.Wait()
	close(bundles)
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	seen, kemSeen := map[uint32]int{}, map[uint32]int{}
	var without, lastResort int
	for b := range bundles {
		if b.OneTime == nil {
			without++
		} else {
			seen[b.OneTime.ID]++
		}
		if b.KEMOneTime {
			kemSeen[b.KEMPreKey.ID]++
		} else if b.KEMPreKey.ID == kemID {
			lastResort++
		}
	}
	for id := uint32(1); id <= 50; id++ {
		if seen[id] != 1 || kemSeen[id] != 1 {
			t.Errorf("one-time key %d handed out %d times, ML-KEM one %d times", id, seen[id], kemSeen[id])
		}
	}
	if len(seen) != 50 || len(kemSeen) != 50 || without != 10 || lastResort != 10 {
		t.Errorf("%d and %d keys handed out, %d bundles without a one-time key, %d with the last resort",
			len(seen), len(kemSeen), without, lastResort)
	}
}

// claimOnce claims pat's bundles; safe to call from any goroutine.
func claimOnce(e *env, token string) (wire.Bundle, error) {
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/users/pat/bundles", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return wire.Bundle{}, err
	}
	defer resp.Body.Close()
	var l wire.BundleList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != 200 || len(l.Bundles) != 1 {
		return wire.Bundle{}, fmt.Errorf("claim: %d %+v %v", resp.StatusCode, l, err)
	}
	return l.Bundles[0], nil
}

// TestPreKeysOverWebSocket checks that a device learns its prekey supply in
// ready, and is told alone, with a prekeys frame, when claims leave it short.
func TestPreKeysOverWebSocket(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.session(doc, pat)
	e.putPreKeys(pat, pat.device, preKeysReq(1, wire.PreKeyLowWater+1))

	phone := e.dialRaw()
	phone.writeFrame(wire.Frame{Type: wire.FrameHello, Token: pat.token, Device: pat.device})
	ready := phone.next()
	if ready.Type != wire.FrameReady || ready.Ready.PreKeys == nil {
		t.Fatalf("ready: %+v", ready)
	}
	if c := ready.Ready.PreKeys; c.Device != pat.device || c.OneTime != 11 || c.KEMOneTime != 11 || c.Low ||
		c.SignedPreKeyID != spkID || c.KEMPreKeyID != kemID {
		t.Errorf("ready counts: %+v", c)
	}
	tablet := pat
	tablet.device = "pat-tablet"
	reg := wire.PutDeviceRequest{SigningKey: bytes.Repeat([]byte{1}, 32), ExchangeKey: bytes.Repeat([]byte{2}, 32)}
	if code := e.do("PUT", "/v1/devices/"+tablet.device, pat.token, reg, nil); code != 201 {
		t.Fatalf("register the tablet: %d", code)
	}
	if f := phone.next(); f.Type != wire.FrameDevice {
		t.Fatalf("the phone heard %+v, want the tablet's registration", f)
	}
	tws := e.dial(tablet, nil)

	e.claim(doc, "pat", nil) // 10 left of each: not low yet
	e.claim(doc, "pat", nil) // 9 left: low
	f := phone.next()
	want := wire.PreKeyCounts{Device: pat.device, OneTime: 9, KEMOneTime: 9, SignedPreKeyID: spkID,
		KEMPreKeyID: kemID, Low: true}
	if d := cmp.Diff(&want, f.PreKeys, cmpopts.IgnoreFields(wire.PreKeyCounts{}, "SignedPreKeyAt")); f.Type !=
		wire.FramePreKeys || d != "" {
		t.Fatalf("the phone heard %s (-want +got):\n%s", f.Type, d)
	}
	// The tablet heard nothing of it: the next frame both hear is the first
	// the tablet gets.
	if code := e.do("PUT", "/v1/me/device-list", pat.token, deviceListReq(1, 5, pat.device, tablet.device),
		nil); code != 200 {
		t.Fatalf("device list: %d", code)
	}
	if f := tws.next(); f.Type != wire.FrameDevice || f.Registered.ListVersion != 1 {
		t.Errorf("the tablet heard %+v, want the device list first", f)
	}
	if f := phone.next(); f.Type != wire.FrameDevice {
		t.Errorf("the phone heard %+v, want the device list", f)
	}
}

func TestDeviceList(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat, eve := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("eve", "clinician")
	root := e.token("root", "admin")
	e.session(doc, pat)
	dws := e.dial(doc, nil)
	list := "/v1/users/pat/device-list"

	if code := e.do("GET", list, doc.token, nil, nil); code != 404 {
		t.Errorf("GET before any list: %d", code)
	}
	var stored wire.SignedDeviceList
	start := time.Now().Add(-time.Minute)
	if code := e.do("PUT", "/v1/me/device-list", pat.token, deviceListReq(1, 5, pat.device), &stored); code != 200 ||
		stored.User != "pat" || stored.Version != 1 || stored.UpdatedAt.Before(start) {
		t.Fatalf("PUT: %d %+v", code, stored)
	}
	var got wire.SignedDeviceList
	if code := e.do("GET", list, doc.token, nil, &got); code != 200 || !cmp.Equal(stored, got) {
		t.Errorf("GET by a contact: %d\n%+v\nwant %+v", code, got, stored)
	}
	if f := dws.nextOf(wire.FrameDevice); *f.Registered != (wire.DeviceEvent{User: "pat", ListVersion: 1}) {
		t.Errorf("contact heard %+v", f.Registered)
	}

	// A new user key (all devices lost): accepted, told and audited.
	next := deviceListReq(2, 6, pat.device)
	next.User = "pat"
	next.UpdatedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if code := e.do("PUT", "/v1/me/device-list", pat.token, next, &got); code != 200 || got.Version != 2 ||
		got.UpdatedAt.Year() == 2000 {
		t.Fatalf("PUT with a new user key: %d %+v", code, got)
	}
	if f := dws.nextOf(wire.FrameDevice); *f.Registered != (wire.DeviceEvent{User: "pat", ListVersion: 2,
		KeyChanged: true}) {
		t.Errorf("contact heard %+v", f.Registered)
	}
	waitFor(t, func() bool {
		var l wire.AuditList
		e.do("GET", "/v1/audit?target=pat", root, nil, &l)
		var acts []string
		for _, r := range l.Records {
			if strings.HasPrefix(r.Action, "device_list.") {
				acts = append(acts, r.Actor+" "+r.Action+" "+r.Outcome)
			}
		}
		return cmp.Equal(acts, []string{"doc device_list.read not_found", "pat device_list.put ok",
			"doc device_list.read ok", "pat device_list.put ok", "pat device_list.key_changed ok"})
	})

	long := deviceListReq(3, 6)
	for i := range 9 {
		long.Devices = append(long.Devices, wire.DeviceListEntry{ID: fmt.Sprint("d", i),
			SigningKey: make([]byte, 32), ExchangeKey: make([]byte, 32)})
	}
	with := func(change func(*wire.SignedDeviceList)) wire.SignedDeviceList {
		l := deviceListReq(3, 6, pat.device)
		change(&l)
		return l
	}
	if code := e.do("PUT", "/v1/devices/pat-old", pat.token, wire.PutDeviceRequest{SigningKey: make([]byte, 32),
		ExchangeKey: bytes.Repeat([]byte{8}, 32)}, nil); code != 201 {
		t.Fatalf("register: %d", code)
	}
	e.do("DELETE", "/v1/devices/pat-old", pat.token, nil, nil)
	put := "/v1/me/device-list"
	e.checkRefusals(t, []refusal{
		{"another user", "PUT", put, pat.token, with(func(l *wire.SignedDeviceList) { l.User = "doc" }), 400,
			wire.CodeBadRequest, "user must be yours"},
		{"a short user key", "PUT", put, pat.token, with(func(l *wire.SignedDeviceList) { l.UserKey = l.UserKey[1:] }),
			400, wire.CodeBadRequest, "userKey must be 32 bytes"},
		{"a short signature", "PUT", put, pat.token, with(func(l *wire.SignedDeviceList) {
			l.Signature = l.Signature[1:]
		}), 400, wire.CodeBadRequest, "signature must be 64 bytes"},
		{"version 0", "PUT", put, pat.token, with(func(l *wire.SignedDeviceList) { l.Version = 0 }), 400,
			wire.CodeBadRequest, "version"},
		{"no devices", "PUT", put, pat.token, deviceListReq(3, 6), 400, wire.CodeBadRequest, "1-8 devices"},
		{"too many devices", "PUT", put, pat.token, long, 400, wire.CodeBadRequest, "1-8 devices"},
		{"a device twice", "PUT", put, pat.token, deviceListReq(3, 6, pat.device, pat.device), 400,
			wire.CodeBadRequest, "twice"},
		{"a bad device id", "PUT", put, pat.token, deviceListReq(3, 6, "a b"), 400, wire.CodeBadRequest, ""},
		{"a short device key", "PUT", put, pat.token, with(func(l *wire.SignedDeviceList) {
			l.Devices[0].ExchangeKey = l.Devices[0].ExchangeKey[1:]
		}), 400, wire.CodeBadRequest, "32 bytes"},
		{"an unknown field", "PUT", put, pat.token, `{"version":3,"devicez":[]}`, 400, wire.CodeBadRequest,
			"unknown field"},
		{"an old version", "PUT", put, pat.token, deviceListReq(2, 6, pat.device), 409, wire.CodeConflict,
			"version 2 is not the next after 2 (want 3)"},
		{"a jump", "PUT", put, pat.token, deviceListReq(1<<63, 6, pat.device), 409, wire.CodeConflict,
			"is not the next after 2 (want 3)"},
		{"an unknown device", "PUT", put, pat.token, deviceListReq(3, 6, pat.device, "pat-watch"), 409,
			wire.CodeConflict, "pat-watch is not a registered device of yours"},
		{"a retired device", "PUT", put, pat.token, deviceListReq(3, 6, "pat-old"), 409, wire.CodeConflict,
			"pat-old is not a registered device"},
		{"another user's device", "PUT", put, pat.token, deviceListReq(3, 6, "doc-phone"), 409, wire.CodeConflict,
			"doc-phone is not a registered device"},
		{"other keys", "PUT", put, pat.token, with(func(l *wire.SignedDeviceList) {
			l.Devices[0].SigningKey = bytes.Repeat([]byte{9}, 32)
		}), 409, wire.CodeConflict, "other keys"},
		{"a stranger reads it", "GET", list, eve.token, nil, 404, wire.CodeNotFound, "user pat"},
		{"a bad user id", "GET", "/v1/users/-/device-list", doc.token, nil, 400, wire.CodeBadRequest, ""},
	})
	if code := e.do("GET", list, pat.token, nil, &got); code != 200 || got.Version != 2 {
		t.Errorf("the list after refusals: %d %+v", code, got)
	}
}

// TestErasureTakesKeyDirectory erases a patient with prekeys and a device
// list: the answer counts them, and none is left.
func TestErasureTakesKeyDirectory(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat := e.user("doc", "clinician"), e.user("pat", "patient")
	e.session(doc, pat)
	e.putPreKeys(pat, pat.device, preKeysReq(1, 3))
	e.putPreKeys(doc, doc.device, preKeysReq(1, 3))
	e.do("PUT", "/v1/me/device-list", pat.token, deviceListReq(1, 5, pat.device), nil)

	var rep wire.EraseReport
	if code := e.do("POST", "/v1/users/pat/erase", e.token("root", "admin"), nil, &rep); code != 200 ||
		rep.Deleted.PreKeys != 8 || rep.Deleted.DeviceList != 1 {
		t.Fatalf("erase: %d %+v", code, rep.Deleted)
	}
	if _, err := e.store.GetDeviceList(t.Context(), "pat"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the device list is still stored")
	}
	if c, err := e.store.PreKeyCounts(t.Context(), "doc", doc.device); err != nil || c.OneTime != 3 {
		t.Errorf("the clinician's prekeys: %+v, %v", c, err)
	}
	cl, err := e.store.ClaimBundles(t.Context(), "pat", nil)
	if err != nil || len(cl.Bundles)+len(cl.Missing) != 0 {
		t.Errorf("claim after the erasure: %+v, %v", cl, err)
	}
	if !strings.Contains(e.metricsText(t), `bedside_erasure_deleted_total{class="prekeys"} 8`) {
		t.Errorf("erased prekeys not counted")
	}
}

// TestClaimBudget: claims need a shared open session and are budgeted per
// claimer, so no member drains another's one-time keys in a loop.
func TestClaimBudget(t *testing.T) {
	e := newEnv(t, hub.Config{})
	doc, pat, nurse := e.user("doc", "clinician"), e.user("pat", "patient"), e.user("nurse", "clinician")
	e.putPreKeys(pat, pat.device, preKeysReq(1, 2))
	closed := e.session(nurse, pat)
	if code := e.do("POST", "/v1/sessions/"+closed+"/close", nurse.token, nil, nil); code != 200 {
		t.Fatalf("close: %d", code)
	}
	var apiErr wire.Error
	if code := e.do("POST", "/v1/users/pat/bundles", nurse.token, nil, &apiErr); code != 404 {
		t.Fatalf("a claim through a closed session only: %d %+v, want 404", code, apiErr)
	}

	e.session(doc, pat)
	for i := range 100 {
		if code := e.do("POST", "/v1/users/pat/bundles", doc.token, nil, nil); code != 200 {
			t.Fatalf("claim %d: %d", i+1, code)
		}
	}
	code := e.do("POST", "/v1/users/pat/bundles", doc.token, nil, &apiErr)
	if code != 429 || apiErr.Code != wire.CodeRateLimited {
		t.Fatalf("claim 101 at once: %d %+v, want 429 rate_limited", code, apiErr)
	}
	// The patient's own claims (their other devices) have their own budget.
	if code := e.do("POST", "/v1/users/pat/bundles", pat.token, nil, nil); code != 200 {
		t.Fatalf("the patient's own claim: %d", code)
	}
}
