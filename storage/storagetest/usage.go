package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

// usage returns the session weeks of session, by week, with patients in
// id order (the order is the store's to choose).
func usage(t *testing.T, s storage.Store, session string) map[storage.Week]storage.SessionWeek {
	t.Helper()
	out := map[storage.Week]storage.SessionWeek{}
	noErr(t, "Usage", s.Usage(t.Context(), func(sw storage.SessionWeek) error {
		if sw.Session == session {
			if _, dup := out[sw.Week]; dup {
				t.Errorf("Usage gives week %v of %s twice", sw.Week, session)
			}
			slices.Sort(sw.Patients)
			out[sw.Week] = sw
		}
		return nil
	}))
	return out
}

// sum adds up a session's weeks: messages, calls and responses by patient.
func sum(t *testing.T, weeks map[storage.Week]storage.SessionWeek) (msgs, calls int, responses map[string]int) {
	t.Helper()
	responses = map[string]int{}
	for _, sw := range weeks {
		msgs += sw.Messages
		calls += sw.Calls
		for _, r := range sw.Responses {
			if r.Wait < 0 {
				t.Errorf("negative wait %v", r.Wait)
			}
			responses[r.Patient]++
		}
	}
	return msgs, calls, responses
}

// patientMsg is a message from the patient's phone.
func patientMsg(session, clientID string) storage.Message {
	m := msg(session, clientID)
	m.SenderUser, m.SenderDevice = "pat", "phone"
	m.Recipients = map[string][]byte{"laptop": []byte("hdr-" + clientID)}
	return m
}

var usageCases = []testCase{
	{"AttributesRoundTrip", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		got, err := s.Attributes(ctx, "pat")
		noErr(t, "Attributes of a user without any", err)
		if got != (storage.Attributes{}) {
			t.Fatalf("Attributes of a user without any = %+v", got)
		}
		want := storage.Attributes{Region: "north", Bucket: "age40-64"}
		noErr(t, "SetAttributes", s.SetAttributes(ctx, "pat", want))
		noErr(t, "SetAttributes of another", s.SetAttributes(ctx, "pa", storage.Attributes{Region: "south"}))
		if got, err := s.Attributes(ctx, "pat"); err != nil || got != want {
			t.Fatalf("Attributes = %+v, %v; want %+v", got, err, want)
		}
		noErr(t, "SetAttributes to none", s.SetAttributes(ctx, "pat", storage.Attributes{}))
		if got, err := s.Attributes(ctx, "pat"); err != nil || got != (storage.Attributes{}) {
			t.Fatalf("cleared Attributes = %+v, %v", got, err)
		}
		if got, _ := s.Attributes(ctx, "pa"); got.Region != "south" {
			t.Fatalf("another user's attributes changed: %+v", got)
		}
	}},
	{"CreationIsCounted", func(t *testing.T, s storage.Store) {
		sess := chat("s1")
		sess.Members = append(sess.Members, storage.Member{User: "pat2", Role: "patient"})
		mustCreate(t, s, sess)
		want := map[storage.Week]storage.SessionWeek{storage.WeekOf(t0): {
			Session: "s1", Week: storage.WeekOf(t0), Kind: "chat", CreatedAt: t0, Patients: []string{"pat", "pat2"},
		}}
		if d := cmp.Diff(want, usage(t, s, "s1"), diffOpts...); d != "" {
			t.Errorf("usage of a new session (-want +got):\n%s", d)
		}
	}},
	{"MessagesAndFirstResponses", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		// Two runs of patient messages, each answered; a clinician's
		// message with no run open answers nothing; the last run stays
		// open.
		for _, m := range []storage.Message{
			msg("s1", "d0"), patientMsg("s1", "p1"), patientMsg("s1", "p2"), msg("s1", "d1"),
			msg("s1", "d2"), patientMsg("s1", "p3"), msg("s1", "d3"), patientMsg("s1", "p4"),
		} {
			mustAppend(t, s, m)
		}
		mustAppend(t, s, msg("s1", "d3")) // a retry counts once

		weeks := usage(t, s, "s1")
		msgs, _, responses := sum(t, weeks)
		if msgs != 8 || !cmp.Equal(responses, map[string]int{"pat": 2}) {
			t.Errorf("usage counts %d messages and responses %v; want 8 and pat:2", msgs, responses)
		}
		for w, sw := range weeks {
			if w != storage.WeekOf(t0) && !cmp.Equal(sw.Patients, []string{"pat"}) {
				t.Errorf("week %v has patients %v, want [pat]", w, sw.Patients)
			}
		}
	}},
	{"RefusedAppendsAreNotCounted", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		req := storage.AppendRequest{Message: msg("s1", "m1"), RequireConsent: []string{"pat"}}
		_, err := s.Append(t.Context(), req)
		checkErr(t, "Append without consent", err, storage.ErrConsentRequired)
		_, _, err = s.CloseSession(t.Context(), "s1", time.Now())
		noErr(t, "CloseSession", err)
		_, err = s.Append(t.Context(), storage.AppendRequest{Message: msg("s1", "m2")})
		checkErr(t, "Append to a closed session", err, storage.ErrSessionClosed)
		if msgs, _, _ := sum(t, usage(t, s, "s1")); msgs != 0 {
			t.Errorf("refused appends counted: %d messages", msgs)
		}
	}},
	{"CallsAreCountedInTheirWeek", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		at := t0.Add(8 * 24 * time.Hour)
		noErr(t, "RecordCall", s.RecordCall(t.Context(), "s1", at))
		noErr(t, "RecordCall", s.RecordCall(t.Context(), "s1", at.Add(time.Minute)))
		sw := usage(t, s, "s1")[storage.WeekOf(at)]
		if sw.Calls != 2 || !cmp.Equal(sw.Patients, []string{"pat"}) || !sw.CreatedAt.IsZero() {
			t.Errorf("week of the calls: %+v; want 2 calls with pat, not created", sw)
		}
		checkErr(t, "RecordCall of an unknown session", s.RecordCall(t.Context(), "nope", at), storage.ErrNotFound)
	}},
	{"UsageOutlivesTheSweep", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mustCreate(t, s, chat("s1"))
		mustAppend(t, s, patientMsg("s1", "p1"))
		mustAppend(t, s, msg("s1", "d1"))
		closedAt := time.Now()
		_, _, err := s.CloseSession(ctx, "s1", closedAt)
		noErr(t, "CloseSession", err)
		before := usage(t, s, "s1")
		st, err := s.Sweep(ctx, storage.SweepPolicy{Now: closedAt.Add(time.Hour), AfterClose: time.Minute})
		noErr(t, "Sweep", err)
		if st.Messages != 2 {
			t.Fatalf("sweep deleted %d messages, want 2", st.Messages)
		}
		if d := cmp.Diff(before, usage(t, s, "s1"), diffOpts...); d != "" {
			t.Errorf("the sweep changed usage (-before +after):\n%s", d)
		}
	}},
}
