package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// erasure is a patient with two devices and a retired one, consent records,
// an open session and a held one with a clinician, and a session of the
// clinician's without them. Every id ends in sfx, so that one store holds
// many.
type erasure struct {
	sfx                         string
	pat, doc, open, held, other string
	phone, tablet, old, laptop  string
	grant                       string // the patient's chat grant, in force
}

// eraseAt and eraseActor are the time and the staff member of every erasure.
var (
	eraseAt    = t0.Add(48 * time.Hour)
	eraseActor = "root"
)

func newErasure(t *testing.T, s storage.Store, sfx string) erasure {
	t.Helper()
	ctx := t.Context()
	f := erasure{sfx: sfx, pat: "pat" + sfx, doc: "doc" + sfx, open: "open" + sfx, held: "held" + sfx,
		other: "other" + sfx, phone: "phone" + sfx, tablet: "tablet" + sfx, old: "old" + sfx,
		laptop: "laptop" + sfx, grant: "g1" + sfx}
	noErr(t, "PutUser", s.PutUser(ctx, storage.User{ID: f.pat, Role: "patient", CreatedAt: t0}))
	noErr(t, "PutUser", s.PutUser(ctx, storage.User{ID: f.doc, Role: "clinician", CreatedAt: t0}))
	for i, d := range []storage.Device{device(f.pat, f.phone, 1), device(f.pat, f.tablet, 2),
		device(f.pat, f.old, 3), device(f.doc, f.laptop, 4)} {
		noErr(t, fmt.Sprint("PutDevice ", i), s.PutDevice(ctx, d, 16))
	}
	f.keyDirectory(t, s)
	noErr(t, "DeleteDevice", s.DeleteDevice(ctx, f.pat, f.old))

	chatG := chatGrant(f.pat, f.grant)
	chatG.Device, chatG.Method, chatG.Actor = f.phone, "in-app", f.pat
	videoG := storage.Consent{ID: "g2" + sfx, User: f.pat, Kind: storage.ConsentGrant, Scope: "video",
		PolicyVersion: "v1", Method: "in-app", Actor: f.pat, Device: f.phone, At: t0}
	videoW := withdrawal(f.pat, "w2"+sfx, videoG.ID)
	videoW.Method, videoW.Actor, videoW.Device = "in-app", f.pat, f.phone
	for _, c := range []storage.Consent{chatG, videoG, videoW} {
		mustConsent(t, s, c)
	}

	members := []storage.Member{{User: f.pat, Role: "patient"}, {User: f.doc, Role: "clinician"}}
	for _, id := range []string{f.open, f.held} {
		mustCreate(t, s, storage.Session{ID: id, Kind: "chat", State: "open", Members: members, CreatedAt: t0})
	}
	mustCreate(t, s, storage.Session{ID: f.other, Kind: "chat", State: "open", CreatedAt: t0,
		Members: []storage.Member{{User: f.doc, Role: "clinician"}, {User: "nurse" + sfx, Role: "clinician"}}})

	// open: 1 doc → pat's phone and tablet, 2 pat, 3 doc → pat's retired
	// device, 4 pat. held: 1 pat, 2 doc. other: 1 doc.
	for _, m := range []storage.Message{
		f.message(f.open, "m1", f.doc, f.laptop, f.phone, f.tablet),
		f.message(f.open, "p1", f.pat, f.phone, f.laptop),
		f.message(f.open, "m2", f.doc, f.laptop, f.old),
		f.message(f.open, "p2", f.pat, f.tablet, f.laptop, f.phone),
		f.message(f.held, "p3", f.pat, f.phone, f.laptop),
		f.message(f.held, "m3", f.doc, f.laptop, f.phone),
		f.message(f.other, "m4", f.doc, f.laptop),
	} {
		mustAppend(t, s, m)
	}
	for _, c := range []struct {
		session, user string
		seq           uint64
	}{{f.open, f.pat, 3}, {f.open, f.doc, 4}, {f.held, f.pat, 1}} {
		_, _, err := s.MoveReadCursor(ctx, c.session, c.user, c.seq)
		noErr(t, "MoveReadCursor", err)
	}
	noErr(t, "SetLegalHold", s.SetLegalHold(ctx, f.held, true))
	noErr(t, "SetAttributes", s.SetAttributes(ctx, f.pat, storage.Attributes{Region: "north", Bucket: "age18-39"}))
	return f
}

// keyDirectory gives the patient's phone both signed prekeys, two
// one-time keys and one ML-KEM one-time key, their tablet one one-time key,
// the device that is retired next some too, and the clinician's laptop
// both signed prekeys; and stores the patient's signed device list.
func (f erasure) keyDirectory(t *testing.T, s storage.Store) {
	t.Helper()
	phone := signed(1)
	phone.OneTime, phone.KEMOneTime = preKeys(10, 11), preKeys(20)
	for dev, up := range map[string]storage.PreKeyUpload{f.phone: phone, f.old: phone,
		f.tablet: {OneTime: preKeys(10)}} {
		mustPutPreKeys(t, s, f.pat, dev, up)
	}
	mustPutPreKeys(t, s, f.doc, f.laptop, signed(1))
	l := storage.DeviceList{User: f.pat, UserKey: []byte("user key"), Version: 1, Signature: []byte("sig")}
	for i, dev := range []string{f.phone, f.tablet} {
		d := device(f.pat, dev, byte(i+1))
		l.Devices = append(l.Devices, storage.DeviceListEntry{ID: dev, SigningKey: d.SigningKey,
			ExchangeKey: d.ExchangeKey})
	}
	_, err := s.PutDeviceList(t.Context(), l)
	noErr(t, "PutDeviceList", err)
}

// message is sent by from's device to the devices named after it.
func (f erasure) message(session, clientID, from, fromDevice string, to ...string) storage.Message {
	m := storage.Message{SessionID: session, ClientMsgID: clientID, SenderUser: from,
		SenderDevice: fromDevice, Recipients: map[string][]byte{}, Body: []byte("ciphertext of " + clientID)}
	for _, dev := range append(to, fromDevice) {
		m.Recipients[dev] = []byte("hdr-" + dev)
	}
	return m
}

func (f erasure) erase(ctx context.Context, s storage.Store, dryRun bool, batch int) (storage.EraseReport, error) {
	return s.EraseUser(ctx, f.pat, storage.EraseOptions{At: eraseAt, Actor: eraseActor, DryRun: dryRun, Batch: batch})
}

// report is what erasing the fixture deletes, records and keeps.
func (f erasure) report(erasedAt time.Time) storage.EraseReport {
	return storage.EraseReport{
		ErasedAt: erasedAt,
		Messages: 2, Retries: 2, Headers: 3, Cursors: 1, Memberships: 1, Devices: 2, ConsentDevices: 3,
		Attributes: 1, UsageWeeks: 2, // the open session's weeks: created at t0, written now
		PreKeys: 6, DeviceList: 1, // the retired device's went with it
		Withdrawn: 1,
		Others:    2, Held: []storage.HeldSession{{ID: f.held, Messages: 1}}, Consents: 4, Retired: 3,
	}
}

// snapshot is everything the store tells of the fixture.
type snapshot struct {
	User     storage.User
	Devices  []storage.Device
	Sessions []storage.Session
	Logs     map[string][]storage.Message
	Cursors  map[string]map[string]uint64
	Consents []storage.Consent
	DocDevs  []storage.Device
	PreKeys  map[string]storage.PreKeyCounts // of the listed devices, the clinician's included
	List     storage.DeviceList              // the patient's; zero when none
}

func (f erasure) snapshot(t *testing.T, s storage.Store) snapshot {
	t.Helper()
	ctx := t.Context()
	var sn snapshot
	var err error
	sn.User, err = s.GetUser(ctx, f.pat)
	noErr(t, "GetUser", err)
	sn.Devices, err = s.ListDevices(ctx, f.pat)
	noErr(t, "ListDevices", err)
	sn.DocDevs, err = s.ListDevices(ctx, f.doc)
	noErr(t, "ListDevices", err)
	sn.Consents, err = s.Consents(ctx, f.pat)
	noErr(t, "Consents", err)
	sn.PreKeys = map[string]storage.PreKeyCounts{}
	for _, d := range append(slices.Clone(sn.Devices), sn.DocDevs...) {
		sn.PreKeys[d.ID] = counts(t, s, d.User, d.ID)
	}
	if sn.List, err = s.GetDeviceList(ctx, f.pat); err != nil {
		checkErr(t, "GetDeviceList", err, storage.ErrNotFound)
	}
	sn.Logs, sn.Cursors = map[string][]storage.Message{}, map[string]map[string]uint64{}
	for _, id := range []string{f.open, f.held, f.other} {
		sess, err := s.GetSession(ctx, id)
		noErr(t, "GetSession", err)
		sn.Sessions = append(sn.Sessions, sess)
		sn.Logs[id] = messages(t, s, id, 0, 0)
		sn.Cursors[id], err = s.ReadCursors(ctx, id)
		noErr(t, "ReadCursors", err)
	}
	return sn
}

// checkErased checks the state a finished erasure of the fixture leaves.
func (f erasure) checkErased(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := t.Context()
	sn := f.snapshot(t, s)
	wantUser := storage.User{ID: f.pat, Role: "patient", CreatedAt: t0, ErasedAt: eraseAt}
	if d := cmp.Diff(wantUser, sn.User, diffOpts...); d != "" {
		t.Errorf("tombstone (-want +got):\n%s", d)
	}
	if len(sn.Devices) != 0 || len(sn.DocDevs) != 1 {
		t.Errorf("devices left: %v; the clinician's: %v", sn.Devices, sn.DocDevs)
	}
	if sn.List.Version != 0 || sn.PreKeys[f.laptop].SignedPreKeyID != 1 {
		t.Errorf("device list left: %+v; the clinician's prekeys: %+v", sn.List, sn.PreKeys)
	}
	if cl := claim(t, s, f.pat); len(cl.Bundles)+len(cl.Missing) != 0 {
		t.Errorf("the erased user's devices can be claimed: %+v", cl)
	}
	if a, err := s.Attributes(ctx, f.pat); err != nil || a != (storage.Attributes{}) {
		t.Errorf("attributes left: %+v, %v", a, err)
	}
	noErr(t, "Usage", s.Usage(ctx, func(w storage.SessionWeek) error {
		named := slices.Contains(w.Patients, f.pat) ||
			slices.ContainsFunc(w.Responses, func(r storage.Response) bool { return r.Patient == f.pat })
		if named && w.Session != f.held {
			t.Errorf("usage of %s in %v still names the erased patient: %+v", w.Session, w.Week, w)
		}
		return nil
	}))
	checkErr(t, "PutDevice of an erased user's device id",
		s.PutDevice(ctx, device(f.doc, f.phone, 9), 16), storage.ErrConflict)
	list, err := s.ListSessions(ctx, f.pat)
	noErr(t, "ListSessions", err)
	if len(list) != 1 || list[0].ID != f.held {
		t.Errorf("the erased user's sessions: %v, want the held one only", list)
	}

	// The open session keeps the clinician's envelopes, sealed for their
	// own devices only, and their cursor; the head stays.
	open := sn.Sessions[0]
	if d := cmp.Diff([]storage.Member{{User: f.doc, Role: "clinician"}}, open.Members); d != "" || open.HeadSeq != 4 {
		t.Errorf("open session after erasure: head %d, members (-want +got):\n%s", open.HeadSeq, d)
	}
	wantOpen := []storage.Message{f.message(f.open, "m1", f.doc, f.laptop), f.message(f.open, "m2", f.doc, f.laptop)}
	wantOpen[0].Seq, wantOpen[1].Seq = 1, 3
	if d := cmp.Diff(wantOpen, sn.Logs[f.open], append(diffOpts, cmpopts.IgnoreFields(storage.Message{},
		"TS"))...); d != "" {
		t.Errorf("open session's log (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{f.doc: 4}, sn.Cursors[f.open]); d != "" {
		t.Errorf("open session's cursors (-want +got):\n%s", d)
	}

	// The held session and the other one are as they were.
	if held := sn.Sessions[1]; len(held.Members) != 2 || len(sn.Logs[f.held]) != 2 ||
		len(sn.Logs[f.held][0].Recipients) != 2 || sn.Cursors[f.held][f.pat] != 1 {
		t.Errorf("held session changed: %+v, log %v, cursors %v", held, sn.Logs[f.held], sn.Cursors[f.held])
	}
	if len(sn.Logs[f.other]) != 1 || len(sn.Sessions[2].Members) != 2 {
		t.Errorf("a session without the erased user changed: %+v %v", sn.Sessions[2], sn.Logs[f.other])
	}
	f.checkConsents(t, sn.Consents)
	if active(t, s, f.pat, storage.ScopeChat) {
		t.Errorf("the erased user's chat consent is still in force")
	}
}

// checkConsents checks the erased user's consent records: kept, without
// device ids, and the chat grant withdrawn by the erasure's actor.
func (f erasure) checkConsents(t *testing.T, got []storage.Consent) {
	t.Helper()
	want := []storage.Consent{
		{ID: f.grant, User: f.pat, Kind: "grant", Scope: "chat", PolicyVersion: "v1", Method: "in-app",
			Actor: f.pat, At: t0},
		{ID: "g2" + f.sfx, User: f.pat, Kind: "grant", Scope: "video", PolicyVersion: "v1", Method: "in-app",
			Actor: f.pat, At: t0},
		{ID: "w2" + f.sfx, User: f.pat, Kind: "withdraw", Scope: "video", Withdraws: "g2" + f.sfx,
			Method: "in-app", Actor: f.pat, At: t0},
		{User: f.pat, Kind: "withdraw", Scope: "chat", Withdraws: f.grant, Method: storage.MethodStaff,
			Actor: eraseActor, At: eraseAt},
	}
	if len(got) == len(want) && got[3].ID == "" {
		t.Errorf("the erasure's withdrawal has no id")
	}
	if d := cmp.Diff(want, got, append(diffOpts, cmpopts.IgnoreFields(storage.Consent{}, "ID"))...); d != "" {
		t.Errorf("consent records after erasure (-want +got):\n%s", d)
	}
}

// countdown is a context whose Err reports it cancelled after n calls: it
// stops a store between two of its transactions, as a kill would.
type countdown struct {
	context.Context
	left atomic.Int64
}

func stopAfter(ctx context.Context, n int) *countdown {
	c := &countdown{Context: ctx}
	c.left.Store(int64(n))
	return c
}

func (c *countdown) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return c.Context.Err()
}

var eraseCases = []testCase{
	{"DeletesAndKeeps", func(t *testing.T, s storage.Store) {
		f := newErasure(t, s, "")
		rep, err := f.erase(t.Context(), s, false, 2)
		noErr(t, "EraseUser", err)
		if d := cmp.Diff(f.report(eraseAt), rep, diffOpts...); d != "" {
			t.Errorf("report (-want +got):\n%s", d)
		}
		f.checkErased(t, s)

		// The retry records went with the envelopes: the same send again is
		// new. The clinician's stay.
		res, err := s.Append(t.Context(), storage.AppendRequest{Message: f.message(f.open, "p1", f.pat,
			f.phone, f.laptop)})
		noErr(t, "Append of an erased envelope again", err)
		if res.Duplicate || res.Seq != 5 {
			t.Errorf("the erased user's retry record is kept: %+v", res)
		}
		res, err = s.Append(t.Context(), storage.AppendRequest{Message: f.message(f.open, "m1", f.doc,
			f.laptop, f.phone, f.tablet)})
		noErr(t, "Append of a kept envelope again", err)
		if !res.Duplicate || res.Seq != 1 {
			t.Errorf("the clinician's retry record is gone: %+v", res)
		}
	}},
	{"DryRunChangesNothing", func(t *testing.T, s storage.Store) {
		f := newErasure(t, s, "")
		before := f.snapshot(t, s)
		rep, err := f.erase(t.Context(), s, true, 1)
		noErr(t, "EraseUser dry run", err)
		if d := cmp.Diff(f.report(time.Time{}), rep, diffOpts...); d != "" {
			t.Errorf("dry run report (-want +got):\n%s", d)
		}
		if d := cmp.Diff(before, f.snapshot(t, s), diffOpts...); d != "" {
			t.Errorf("a dry run changed the store (-before +after):\n%s", d)
		}
	}},
	{"AgainFindsNothingMore", func(t *testing.T, s storage.Store) {
		f := newErasure(t, s, "")
		_, err := f.erase(t.Context(), s, false, 0)
		noErr(t, "EraseUser", err)
		later := storage.EraseOptions{At: eraseAt.Add(time.Hour), Actor: "other-admin"}
		rep, err := s.EraseUser(t.Context(), f.pat, later)
		noErr(t, "EraseUser again", err)
		want := storage.EraseReport{ErasedAt: eraseAt, Held: []storage.HeldSession{{ID: f.held, Messages: 1}},
			Consents: 4, Retired: 3}
		if d := cmp.Diff(want, rep, diffOpts...); d != "" {
			t.Errorf("second report (-want +got):\n%s", d)
		}
		f.checkErased(t, s)
	}},
	{"FinishesAfterAStop", func(t *testing.T, s storage.Store) {
		// Stop the erasure before each of its transactions in turn; a
		// second run always ends in the state of an uninterrupted one.
		for n := 0; ; n++ {
			if n > 200 {
				t.Fatal("the erasure never ran to its end")
			}
			f := newErasure(t, s, fmt.Sprint("-", n))
			_, err := f.erase(stopAfter(t.Context(), n), s, false, 1)
			if err == nil {
				f.checkErased(t, s)
				return
			}
			checkErr(t, fmt.Sprintf("EraseUser stopped after %d calls", n), err, context.Canceled)
			_, err = f.erase(t.Context(), s, false, 1)
			noErr(t, "EraseUser after a stop", err)
			f.checkErased(t, s)
		}
	}},
	{"HoldLiftedThenAgain", func(t *testing.T, s storage.Store) {
		f := newErasure(t, s, "")
		_, err := f.erase(t.Context(), s, false, 0)
		noErr(t, "EraseUser", err)
		noErr(t, "SetLegalHold off", s.SetLegalHold(t.Context(), f.held, false))
		rep, err := f.erase(t.Context(), s, false, 0)
		noErr(t, "EraseUser after the hold", err)
		want := storage.EraseReport{ErasedAt: eraseAt, Messages: 1, Retries: 1, Headers: 1, Cursors: 1,
			Memberships: 1, UsageWeeks: 2, Others: 1, Consents: 4, Retired: 3}
		if d := cmp.Diff(want, rep, diffOpts...); d != "" {
			t.Errorf("report after the hold (-want +got):\n%s", d)
		}
		list, err := s.ListSessions(t.Context(), f.pat)
		noErr(t, "ListSessions", err)
		if len(list) != 0 {
			t.Errorf("sessions left: %v", list)
		}
		if got := messages(t, s, f.held, 0,
			0); len(got) != 1 || got[0].SenderUser != f.doc || len(got[0].Recipients) != 1 {
			t.Errorf("held session's log after the hold: %+v", got)
		}
	}},
	{"ConsentGateClosedAtOnce", func(t *testing.T, s storage.Store) {
		// From the erasure on, an append that requires the user's consent
		// is refused: a send racing the erasure cannot land after it.
		f := newErasure(t, s, "")
		_, err := f.erase(t.Context(), s, false, 0)
		noErr(t, "EraseUser", err)
		_, err = s.Append(t.Context(), storage.AppendRequest{Message: f.message(f.open, "late", f.doc, f.laptop),
			RequireConsent: []string{f.pat}})
		checkErr(t, "Append requiring the erased user's consent", err, storage.ErrConsentRequired)
	}},
	{"UnknownUser", func(t *testing.T, s storage.Store) {
		_, err := s.EraseUser(t.Context(), "nobody", storage.EraseOptions{Actor: eraseActor})
		checkErr(t, "EraseUser of an unknown user", err, storage.ErrNotFound)
		_, err = s.EraseUser(t.Context(), "nobody", storage.EraseOptions{Actor: eraseActor, DryRun: true})
		checkErr(t, "dry run of an unknown user", err, storage.ErrNotFound)
	}},
	{"ErasedAtOnlyWhenErased", func(t *testing.T, s storage.Store) {
		f := newErasure(t, s, "")
		for _, id := range []string{f.pat, f.doc} {
			u, err := s.GetUser(t.Context(), id)
			noErr(t, "GetUser", err)
			if !u.ErasedAt.IsZero() {
				t.Errorf("%s, never erased, has ErasedAt %v", id, u.ErasedAt)
			}
		}
		// Every consent record names a device, which the erasure removes.
		if slices.ContainsFunc(f.snapshot(t, s).Consents, func(c storage.Consent) bool { return c.Device == "" }) {
			t.Errorf("a consent record of the fixture names no device")
		}
	}},
}
