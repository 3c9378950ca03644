package hub_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
)

// FuzzAttributesRequest sends arbitrary bodies to PUT
// /v1/users/{user}/attributes as an admin. The answer is a JSON error or
// the attributes stored, which are labels and nothing else.
func FuzzAttributesRequest(f *testing.F) {
	e := newEnv(f, hub.Config{})
	root := e.token("root", "admin")
	handler := e.hub.Handler()

	f.Add([]byte(`{"region":"north","bucket":"age40-64"}`))
	f.Add([]byte(`{"region":"unknown"}`))
	f.Add([]byte(`{"bucket":"other"}`))
	f.Add([]byte(`{"region":null,"bucket":["a"]}`))
	f.Add([]byte(`{"user":"pat","region":"a\u0000b"}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("PUT", "/v1/users/pat/attributes", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+root)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		switch {
		case rec.Code >= 500:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body)
		case rec.Code >= 400:
			var werr wire.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &werr); err != nil || werr.Code == "" {
				t.Fatalf("error answer is not a JSON error: %q", rec.Body)
			}
			return
		}
		var got wire.Attributes
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.User != "pat" {
			t.Fatalf("answer %q: %v", rec.Body, err)
		}
		stored, err := e.store.Attributes(t.Context(), "pat")
		if err != nil || stored.Region != got.Region || stored.Bucket != got.Bucket {
			t.Fatalf("stored %+v, answered %+v: %v", stored, got, err)
		}
		for _, l := range []string{got.Region, got.Bucket} {
			if l != "" && !auth.ValidLabel(l) {
				t.Fatalf("stored a label that is not one: %q", l)
			}
		}
	})
}

// FuzzUsageReportQuery asks for reports with arbitrary weeks and formats,
// as an auditor: a report or a JSON error, never a 500.
func FuzzUsageReportQuery(f *testing.F) {
	e := newEnv(f, hub.Config{})
	auditor := e.token("ines", "auditor")
	handler := e.hub.Handler()

	f.Add("2026-W01", "2026-W10", "csv")
	f.Add("", "", "")
	f.Add("1970-W01", "9999-W52", "json")
	f.Add("2026-W+1", "2026-W-1", "xml")
	f.Add("2026-W53", "20260-W1", "CSV")
	f.Add("", "1970-W01", "json")
	f.Fuzz(func(t *testing.T, from, to, format string) {
		q := url.Values{"from": {from}, "to": {to}, "format": {format}}
		req := httptest.NewRequest("GET", "/v1/reports/usage?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%v answered %d: %s", q, rec.Code, rec.Body)
		case rec.Code >= 400:
			var werr wire.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &werr); err != nil || werr.Code == "" {
				t.Fatalf("error answer is not a JSON error: %q", rec.Body)
			}
		case format != "csv":
			var rep wire.UsageReport
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || len(rep.Tables) != 2 {
				t.Fatalf("report %q: %v", rec.Body, err)
			}
		}
	})
}
