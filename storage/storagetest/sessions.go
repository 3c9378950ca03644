package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
)

var sessionCases = []testCase{
	{"Close", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		mustConsent(t, s, chatGrant("pat", "g1"))
		mustAppend(t, s, msg("s1", "m1"))
		at := t0.Add(24 * time.Hour)
		got, closed, err := s.CloseSession(t.Context(), "s1", at)
		noErr(t, "CloseSession", err)
		if !closed || got.State != storage.SessionClosed || !got.ClosedAt.Equal(at) || got.HeadSeq != 1 {
			t.Fatalf("CloseSession = %+v, closed %v", got, closed)
		}
		stored, err := s.GetSession(t.Context(), "s1")
		noErr(t, "GetSession", err)
		if stored.State != storage.SessionClosed || !stored.ClosedAt.Equal(at) {
			t.Errorf("stored after close: %+v", stored)
		}
		_, err = s.Append(t.Context(), storage.AppendRequest{Message: msg("s1", "m2")})
		checkErr(t, "Append to a closed session", err, storage.ErrSessionClosed)
		_, _, err = s.AddMember(t.Context(), "s1", storage.Member{User: "nurse", Role: "clinician"}, 8, t0)
		checkErr(t, "AddMember to a closed session", err, storage.ErrSessionClosed)
		again, closed, err := s.CloseSession(t.Context(), "s1", at.Add(time.Hour))
		noErr(t, "CloseSession again", err)
		if closed || !again.ClosedAt.Equal(at) {
			t.Errorf("second close changed the session: %+v closed %v", again, closed)
		}
		_, _, err = s.CloseSession(t.Context(), "s2", at)
		checkErr(t, "CloseSession of an unknown session", err, storage.ErrNotFound)
	}},
	{"AddMember", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		nurse := storage.Member{User: "nurse", Role: "clinician"}
		got, added, err := s.AddMember(t.Context(), "s1", nurse, 3, t0)
		noErr(t, "AddMember", err)
		want := chat("s1")
		want.Members = append(want.Members, nurse)
		if d := cmp.Diff(want, got, diffOpts...); d != "" || !added {
			t.Errorf("AddMember (-want +got):\n%s added %v", d, added)
		}
		stored, err := s.GetSession(t.Context(), "s1")
		noErr(t, "GetSession", err)
		if d := cmp.Diff(want, stored, diffOpts...); d != "" {
			t.Errorf("GetSession after AddMember (-want +got):\n%s", d)
		}
		list, err := s.ListSessions(t.Context(), "nurse")
		noErr(t, "ListSessions", err)
		if len(list) != 1 || list[0].ID != "s1" {
			t.Errorf("the new member's sessions: %v", list)
		}

		_, added, err = s.AddMember(t.Context(), "s1", nurse, 3, t0)
		noErr(t, "AddMember again", err)
		if added {
			t.Error("adding a member twice reported added")
		}
		_, _, err = s.AddMember(t.Context(), "s1", storage.Member{User: "eve", Role: "clinician"}, 3, t0)
		checkErr(t, "AddMember to a full session", err, storage.ErrFull)
		_, _, err = s.AddMember(t.Context(), "s2", nurse, 3, t0)
		checkErr(t, "AddMember to an unknown session", err, storage.ErrNotFound)
	}},
	{"CreateThenGet", func(t *testing.T, s storage.Store) {
		want := chat("s1")
		mustCreate(t, s, want)
		got, err := s.GetSession(t.Context(), "s1")
		noErr(t, "GetSession", err)
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetSession (-want +got):\n%s", d)
		}
	}},
	{"ExistingIDConflicts", func(t *testing.T, s storage.Store) {
		want := chat("s1")
		mustCreate(t, s, want)
		other := chat("s1")
		other.Kind = "call"
		other.Members = []storage.Member{{User: "eve", Role: "clinician"}}
		checkErr(t, "CreateSession of an existing id", s.CreateSession(t.Context(), other), storage.ErrConflict)
		got, err := s.GetSession(t.Context(), "s1")
		noErr(t, "GetSession", err)
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GetSession after a refused CreateSession (-want +got):\n%s", d)
		}
		list, err := s.ListSessions(t.Context(), "eve")
		noErr(t, "ListSessions", err)
		if len(list) != 0 {
			t.Errorf("the refused session is listed for its member: %v", list)
		}
	}},
	{"UnknownIsNotFound", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		_, err := s.GetSession(t.Context(), "s2")
		checkErr(t, "GetSession of an unknown id", err, storage.ErrNotFound)
	}},
	{"HeadSeqFollowsAppends", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		for i := 1; i <= 3; i++ {
			mustAppend(t, s, msg("s1", fmt.Sprint("m", i)))
			if h := head(t, s, "s1"); h != uint64(i) {
				t.Fatalf("HeadSeq after %d appends = %d", i, h)
			}
		}
	}},
	{"ListNewestFirst", func(t *testing.T, s storage.Store) {
		for i, id := range []string{"b", "d", "a", "c"} {
			sess := chat(id)
			sess.CreatedAt = t0.Add(time.Duration(i) * time.Hour)
			mustCreate(t, s, sess)
		}
		other := chat("x")
		other.Members = []storage.Member{{User: "doc2", Role: "clinician"}, {User: "do", Role: "patient"}}
		mustCreate(t, s, other)
		mustAppend(t, s, msg("a", "m1"))

		list, err := s.ListSessions(t.Context(), "doc")
		noErr(t, "ListSessions", err)
		var ids []string
		for _, sess := range list {
			ids = append(ids, sess.ID)
		}
		if d := cmp.Diff([]string{"c", "a", "d", "b"}, ids); d != "" {
			t.Errorf("ListSessions ids (-want +got):\n%s", d)
		}
		if i := slices.IndexFunc(list,
			func(s storage.Session) bool { return s.ID == "a" }); i < 0 || list[i].HeadSeq != 1 {
			t.Errorf("ListSessions does not show session a with HeadSeq 1: %+v", list)
		}
	}},
	{"ListNoneIsEmpty", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		list, err := s.ListSessions(t.Context(), "eve")
		noErr(t, "ListSessions of a user in no session", err)
		if len(list) != 0 {
			t.Errorf("ListSessions = %v, want none", list)
		}
	}},
	{"GrantEmergency", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mustCreate(t, s, chat("s1"))
		_, _, err := s.CloseSession(ctx, "s1", t0.Add(time.Hour))
		noErr(t, "CloseSession", err)
		g := storage.Grant{User: "er.doc", By: "root", Reason: "patient unconscious in A&E",
			Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}
		got, err := s.GrantEmergency(ctx, "s1", g, "clinician", 3)
		noErr(t, "GrantEmergency to a closed session", err)
		want := chat("s1")
		want.State, want.ClosedAt = storage.SessionClosed, t0.Add(time.Hour)
		want.Members = append(want.Members, storage.Member{User: "er.doc", Role: "clinician", Until: g.Until})
		want.Grants = []storage.Grant{g}
		if d := cmp.Diff(want, got, diffOpts...); d != "" {
			t.Errorf("GrantEmergency (-want +got):\n%s", d)
		}
		stored, err := s.GetSession(ctx, "s1")
		noErr(t, "GetSession", err)
		if d := cmp.Diff(want, stored, diffOpts...); d != "" {
			t.Errorf("stored grant (-want +got):\n%s", d)
		}
		if list, _ := s.ListSessions(ctx, "er.doc"); len(list) != 1 {
			t.Errorf("the grantee's sessions: %v", list)
		}

		// A second grant extends the membership; both grants stay.
		again := g
		again.Since, again.Until, again.Reason = t0.Add(90*time.Minute), t0.Add(5*time.Hour), "still in theatre"
		got, err = s.GrantEmergency(ctx, "s1", again, "clinician", 3)
		noErr(t, "GrantEmergency again", err)
		if len(got.Members) != 3 || !got.Members[2].Until.Equal(again.Until) || len(got.Grants) != 2 ||
			got.Grants[1].Reason != again.Reason {
			t.Errorf("renewed grant: %+v", got)
		}
		g.User = "doc"
		_, err = s.GrantEmergency(ctx, "s1", g, "clinician", 3)
		checkErr(t, "GrantEmergency to a member", err, storage.ErrConflict)
		g.User = "nurse"
		_, err = s.GrantEmergency(ctx, "s1", g, "clinician", 3)
		checkErr(t, "GrantEmergency beyond the cap", err, storage.ErrFull)
		_, err = s.GrantEmergency(ctx, "nope", g, "clinician", 3)
		checkErr(t, "GrantEmergency to an unknown session", err, storage.ErrNotFound)

		// Once er.doc's access has ended, their place is free again, and
		// their grants stay.
		g.Since, g.Until = t0.Add(6*time.Hour), t0.Add(7*time.Hour)
		got, err = s.GrantEmergency(ctx, "s1", g, "clinician", 3)
		noErr(t, "GrantEmergency after the first ended", err)
		if len(got.Members) != 3 || got.Members[2].User != "nurse" || len(got.Grants) != 3 {
			t.Errorf("after the first grant ended: %+v", got)
		}
		if list, _ := s.ListSessions(ctx, "er.doc"); len(list) != 0 {
			t.Errorf("the ended grantee's sessions: %v", list)
		}
	}},
	{"AddMemberAfterEmergency", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mustCreate(t, s, chat("s1"))
		g := storage.Grant{User: "er.doc", By: "root", Reason: "r", Since: t0, Until: t0.Add(time.Hour)}
		_, err := s.GrantEmergency(ctx, "s1", g, "clinician", 3)
		noErr(t, "GrantEmergency", err)
		got, added, err := s.AddMember(ctx, "s1", storage.Member{User: "er.doc", Role: "clinician"}, 3, t0)
		noErr(t, "AddMember", err)
		if !added || len(got.Members) != 3 || got.Members[2].Emergency() || len(got.Grants) != 1 {
			t.Errorf("emergency member made regular: added %v, %+v", added, got)
		}

		// A grant that ended frees its place for a regular member.
		mustCreate(t, s, chat("s2"))
		g.User = "nurse"
		_, err = s.GrantEmergency(ctx, "s2", g, "clinician", 3)
		noErr(t, "GrantEmergency", err)
		_, _, err = s.AddMember(ctx, "s2", storage.Member{User: "eve", Role: "clinician"}, 3, t0)
		checkErr(t, "AddMember while the grant runs", err, storage.ErrFull)
		got, added, err = s.AddMember(ctx, "s2", storage.Member{User: "eve", Role: "clinician"}, 3, g.Until)
		noErr(t, "AddMember after the grant", err)
		if !added || len(got.Members) != 3 || got.Members[2].User != "eve" || len(got.Grants) != 1 {
			t.Errorf("after the grant ended: %+v", got)
		}
	}},
}

var messageCases = []testCase{
	{"Pages", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		for i := 1; i <= 10; i++ {
			mustAppend(t, s, msg("s1", fmt.Sprint("m", i)))
		}
		for _, tc := range []struct {
			after uint64
			limit int
			want  []uint64
		}{
			{0, 3, []uint64{1, 2, 3}},
			{3, 3, []uint64{4, 5, 6}},
			{8, 5, []uint64{9, 10}},
			{9, 1, []uint64{10}},
			{10, 5, nil},
			{1000, 5, nil},
			{^uint64(0), 5, nil},
		} {
			got := seqs(messages(t, s, "s1", tc.after, tc.limit))
			if d := cmp.Diff(tc.want, got, diffOpts...); d != "" {
				t.Errorf("Messages(after %d, limit %d) seqs (-want +got):\n%s", tc.after, tc.limit, d)
			}
		}
	}},
	{"LimitZeroServesAPage", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		for i := 1; i <= 3; i++ {
			mustAppend(t, s, msg("s1", fmt.Sprint("m", i)))
		}
		for _, limit := range []int{0, -1} {
			got := seqs(messages(t, s, "s1", 1, limit))
			if len(got) == 0 || got[0] != 2 || !slices.IsSorted(got) {
				t.Errorf("Messages(after 1, limit %d) seqs = %v, want a page from 2", limit, got)
			}
		}
	}},
	{"KeepsWhatWasSent", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		sent := []storage.Message{
			msg("s1", "m1"),
			{SessionID: "s1", ClientMsgID: "m2", SenderUser: "pat", SenderDevice: "phone",
				Recipients: map[string][]byte{"laptop": {0, 1, 255}, "desk": {}}, Body: []byte{0, 0, 7}},
			{SessionID: "s1", ClientMsgID: "m3", SenderUser: "pat", SenderDevice: "phone"},
		}
		for i := range sent {
			res := mustAppend(t, s, sent[i])
			sent[i].Seq, sent[i].TS = res.Seq, res.TS
		}
		got := messages(t, s, "s1", 0, 10)
		if d := cmp.Diff(sent, got, diffOpts...); d != "" {
			t.Errorf("Messages (-sent +got):\n%s", d)
		}
	}},
	{"UnknownSessionIsNotFound", func(t *testing.T, s storage.Store) {
		_, err := s.Messages(t.Context(), "nope", 0, 10)
		checkErr(t, "Messages of an unknown session", err, storage.ErrNotFound)
	}},
}

var cursorCases = []testCase{
	{"MovesOnlyForward", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		for i := 1; i <= 3; i++ {
			mustAppend(t, s, msg("s1", fmt.Sprint("m", i)))
		}
		for _, step := range []struct {
			seq   uint64
			now   uint64
			moved bool
		}{
			{0, 0, false}, {2, 2, true}, {1, 2, false}, {2, 2, false}, {3, 3, true},
		} {
			now, moved, err := s.MoveReadCursor(t.Context(), "s1", "pat", step.seq)
			noErr(t, fmt.Sprint("MoveReadCursor to ", step.seq), err)
			if now != step.now || moved != step.moved {
				t.Errorf("MoveReadCursor to %d = (%d, %t), want (%d, %t)", step.seq, now, moved, step.now, step.moved)
			}
		}
		got, err := s.ReadCursors(t.Context(), "s1")
		noErr(t, "ReadCursors", err)
		if d := cmp.Diff(map[string]uint64{"pat": 3}, got); d != "" {
			t.Errorf("ReadCursors (-want +got):\n%s", d)
		}
	}},
	{"BeyondHeadRefused", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		mustAppend(t, s, msg("s1", "m1"))
		_, _, err := s.MoveReadCursor(t.Context(), "s1", "doc", 1)
		noErr(t, "MoveReadCursor to the head", err)
		_, _, err = s.MoveReadCursor(t.Context(), "s1", "doc", 2)
		checkErr(t, "MoveReadCursor past the head", err, storage.ErrBeyondHead)
		got, err := s.ReadCursors(t.Context(), "s1")
		noErr(t, "ReadCursors", err)
		if d := cmp.Diff(map[string]uint64{"doc": 1}, got); d != "" {
			t.Errorf("ReadCursors after a refused move (-want +got):\n%s", d)
		}
	}},
	{"NeverReadIsAbsent", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		got, err := s.ReadCursors(t.Context(), "s1")
		noErr(t, "ReadCursors", err)
		if len(got) != 0 {
			t.Errorf("ReadCursors of a session nobody read = %v, want none", got)
		}
	}},
	{"PerSession", func(t *testing.T, s storage.Store) {
		mustCreate(t, s, chat("s1"))
		mustCreate(t, s, chat("s10"))
		mustAppend(t, s, msg("s10", "m1"))
		_, _, err := s.MoveReadCursor(t.Context(), "s10", "pat", 1)
		noErr(t, "MoveReadCursor", err)
		got, err := s.ReadCursors(t.Context(), "s1")
		noErr(t, "ReadCursors", err)
		if len(got) != 0 {
			t.Errorf("ReadCursors of s1 = %v, want none: the cursor moved in s10", got)
		}
	}},
	{"UnknownSessionIsNotFound", func(t *testing.T, s storage.Store) {
		_, _, err := s.MoveReadCursor(t.Context(), "nope", "pat", 0)
		checkErr(t, "MoveReadCursor in an unknown session", err, storage.ErrNotFound)
		_, err = s.ReadCursors(t.Context(), "nope")
		checkErr(t, "ReadCursors of an unknown session", err, storage.ErrNotFound)
	}},
}
