package hub_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/wire"
)

// serveFuzz sends body to method path with token and returns the answer,
// failing on a 500 or an error that is not a JSON error.
func serveFuzz(t *testing.T, e *env, method, path, token string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.hub.Handler().ServeHTTP(rec, req)
	switch {
	case rec.Code >= 500:
		t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body)
	case rec.Code >= 400:
		var werr wire.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &werr); err != nil || werr.Code == "" {
			t.Fatalf("error answer is not a JSON error: %q", rec.Body)
		}
	}
	return rec
}

// FuzzPreKeysRequest uploads arbitrary bodies as prekeys of the patient's
// phone. The answer is a JSON error or the counts, which agree with the
// store and never pass the cap.
func FuzzPreKeysRequest(f *testing.F) {
	e := newEnv(f, hub.Config{})
	pat := e.user("pat", "patient")
	for _, req := range []wire.PutPreKeysRequest{preKeysReq(1, 2), {OneTime: []wire.PreKey{x25519(9)}}} {
		b, _ := json.Marshal(req)
		f.Add(b)
	}
	f.Add([]byte(`{"signedPreKey":{"id":0,"key":"","signature":""}}`))
	f.Add([]byte(`{"oneTime":[{"id":4294967296}]}`))
	f.Add([]byte(`{"kemOneTime":null,"oneTime":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serveFuzz(t, e, "PUT", "/v1/devices/pat-phone/prekeys", pat.token, body)
		if rec.Code >= 400 {
			return
		}
		var got wire.PreKeyCounts
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Device != pat.device {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		stored, err := e.store.PreKeyCounts(t.Context(), "pat", pat.device)
		if err != nil || stored.OneTime != got.OneTime || stored.KEMOneTime != got.KEMOneTime ||
			stored.SignedPreKeyID != got.SignedPreKeyID || stored.KEMPreKeyID != got.KEMPreKeyID {
			t.Fatalf("stored %+v, answered %+v: %v", stored, got, err)
		}
		if got.OneTime > wire.MaxOneTimePreKeys || got.KEMOneTime > wire.MaxOneTimePreKeys {
			t.Fatalf("counts past the cap: %+v", got)
		}
	})
}

// FuzzDeviceListRequest puts arbitrary bodies as the patient's device list.
// The answer is a JSON error or the patient's list, as stored, naming only
// their phone with its keys.
func FuzzDeviceListRequest(f *testing.F) {
	e := newEnv(f, hub.Config{})
	pat := e.user("pat", "patient")
	e.user("doc", "clinician")
	for _, l := range []wire.SignedDeviceList{deviceListReq(1, 5, pat.device),
		deviceListReq(1<<63, 6, pat.device, "doc-phone")} {
		b, _ := json.Marshal(l)
		f.Add(b)
	}
	f.Add([]byte(`{"user":"doc","version":2}`))
	f.Add([]byte(`{"version":-1,"devices":[{"id":""}]}`))
	f.Add([]byte(`{"updatedAt":"yesterday"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serveFuzz(t, e, "PUT", "/v1/me/device-list", pat.token, body)
		if rec.Code >= 400 {
			return
		}
		var got wire.SignedDeviceList
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.User != "pat" || got.Version == 0 {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		stored, err := e.store.GetDeviceList(t.Context(), "pat")
		if err != nil || stored.Version != got.Version || !bytes.Equal(stored.Signature, got.Signature) {
			t.Fatalf("stored %+v, answered %+v: %v", stored, got, err)
		}
		want := deviceListReq(0, 0, pat.device).Devices
		if !cmp.Equal(got.Devices, want) {
			t.Fatalf("a list naming other devices or keys was taken: %+v", got.Devices)
		}
	})
}

// FuzzClaimBundlesRequest claims the patient's bundles with arbitrary
// bodies, as a clinician who shares a session with them. The answer is a
// JSON error or bundles of the patient's devices only, in order, none also
// missing.
func FuzzClaimBundlesRequest(f *testing.F) {
	e := newEnv(f, hub.Config{})
	pat, doc := e.user("pat", "patient"), e.user("doc", "clinician")
	e.session(doc, pat)
	e.putPreKeys(pat, pat.device, preKeysReq(1, 5))
	f.Add([]byte(``))
	f.Add([]byte(`{"devices":["pat-phone","doc-phone","zz"]}`))
	f.Add([]byte(`{"devices":[]}`))
	f.Add([]byte(`{"devices":["pat-phone","pat-phone"]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serveFuzz(t, e, "POST", "/v1/users/pat/bundles", doc.token, body)
		if rec.Code >= 400 {
			return
		}
		var got wire.BundleList
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		for _, b := range got.Bundles {
			if b.Device != pat.device || slices.Contains(got.Missing, b.Device) {
				t.Fatalf("bundle of %s handed out (missing %v)", b.Device, got.Missing)
			}
		}
		if !slices.IsSorted(got.Missing) {
			t.Fatalf("missing out of order: %v", got.Missing)
		}
	})
}
