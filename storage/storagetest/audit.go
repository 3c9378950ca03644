package storagetest

import (
	"testing"

	"github.com/bedside/bedside/storage"
	"github.com/bedside/bedside/storage/audit"
)

var auditCases = []testCase{
	{"AppendLinksAndPages", func(t *testing.T, s storage.Store) {
		rec := func(action string) audit.Record {
			return audit.Record{Time: t0, Actor: "doc", Role: "clinician", Action: action, Target: "s1",
				Outcome: audit.OK}
		}
		noErr(t, "AppendAudit", s.AppendAudit(t.Context(), []audit.Record{rec("a1"), rec("a2"), rec("a3")}))
		noErr(t, "AppendAudit", s.AppendAudit(t.Context(), []audit.Record{rec("a4"), rec("a5")}))
		noErr(t, "AppendAudit of none", s.AppendAudit(t.Context(), nil))

		all, err := s.AuditRecords(t.Context(), 0, 0)
		noErr(t, "AuditRecords", err)
		if len(all) != 5 {
			t.Fatalf("%d records, want 5", len(all))
		}
		var v audit.Verifier
		for i, r := range all {
			if err := v.Next(r); err != nil {
				t.Fatalf("stored chain: %v", err)
			}
			if r.Action != []string{"a1", "a2", "a3", "a4", "a5"}[i] || !r.Time.Equal(t0) {
				t.Errorf("record %d: %+v", i+1, r)
			}
		}
		page, err := s.AuditRecords(t.Context(), 3, 1)
		noErr(t, "AuditRecords after 3", err)
		if len(page) != 1 || page[0].Seq != 4 {
			t.Errorf("page after 3: %+v", page)
		}
		if rest, err := s.AuditRecords(t.Context(), ^uint64(0), 10); err != nil || len(rest) != 0 {
			t.Errorf("after the largest seq: %v, %v", rest, err)
		}
	}},
	{"ByTarget", func(t *testing.T, s storage.Store) {
		rec := func(target string) audit.Record {
			return audit.Record{Time: t0, Actor: "doc", Role: "clinician", Action: "history.read",
				Target: target, Outcome: audit.OK}
		}
		noErr(t, "AppendAudit", s.AppendAudit(t.Context(),
			[]audit.Record{rec("s1"), rec("s10"), rec("s1"), rec("s2"), rec("s1")}))
		got, err := s.AuditFor(t.Context(), "s1", 2)
		noErr(t, "AuditFor", err)
		if len(got) != 2 || got[0].Seq != 5 || got[1].Seq != 3 {
			t.Fatalf("newest two of s1: %+v", got)
		}
		all, err := s.AuditFor(t.Context(), "s1", 0)
		noErr(t, "AuditFor", err)
		if len(all) != 3 || all[2].Seq != 1 {
			t.Fatalf("all of s1: %+v", all)
		}
		none, err := s.AuditFor(t.Context(), "s3", 0)
		if err != nil || len(none) != 0 {
			t.Fatalf("of s3: %+v %v", none, err)
		}
	}},
}
