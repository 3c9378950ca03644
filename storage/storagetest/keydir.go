package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/bedside/bedside/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// preKey is a prekey with id, as a store sees one: bytes it does not check.
func preKey(id uint32) storage.PreKey {
	return storage.PreKey{ID: id, Key: []byte(fmt.Sprint("key-", id)), Signature: []byte(fmt.Sprint("sig-", id))}
}

func preKeys(ids ...uint32) []storage.PreKey {
	out := make([]storage.PreKey, len(ids))
	for i, id := range ids {
		out[i] = preKey(id)
	}
	return out
}

// signed is an upload of both signed prekeys: X25519 id, ML-KEM id+1.
func signed(id uint32) storage.PreKeyUpload {
	spk, kem := preKey(id), preKey(id+1)
	return storage.PreKeyUpload{SignedPreKey: &spk, KEMPreKey: &kem}
}

// maxOneTime is the cap on one-time keys of a kind the suite passes.
const maxOneTime = 200

func mustPutPreKeys(t *testing.T, s storage.Store, user, device string, up storage.PreKeyUpload) storage.PreKeyCounts {
	t.Helper()
	c, err := s.PutPreKeys(t.Context(), user, device, up, maxOneTime)
	noErr(t, "PutPreKeys "+device, err)
	return c
}

func counts(t *testing.T, s storage.Store, user, device string) storage.PreKeyCounts {
	t.Helper()
	c, err := s.PreKeyCounts(t.Context(), user, device)
	noErr(t, "PreKeyCounts "+device, err)
	return c
}

func claim(t *testing.T, s storage.Store, user string, devices ...string) storage.Claim {
	t.Helper()
	cl, err := s.ClaimBundles(t.Context(), user, devices)
	noErr(t, "ClaimBundles", err)
	return cl
}

// ignoreTimes leaves out the times the store sets itself.
var ignoreTimes = []cmp.Option{cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(storage.PreKey{}, "CreatedAt"),
	cmpopts.IgnoreFields(storage.PreKeyCounts{}, "SignedPreKeyAt"),
	cmpopts.IgnoreFields(storage.Device{}, "CreatedAt")}

// withDevices stores pat's phone and tablet and doc's laptop.
func withDevices(t *testing.T, s storage.Store) {
	t.Helper()
	for _, d := range []storage.Device{device("pat", "phone", 1), device("pat", "tablet", 2),
		device("doc", "laptop", 3)} {
		noErr(t, "PutDevice", s.PutDevice(t.Context(), d, 16))
	}
}

var preKeyCases = []testCase{
	{"PutThenCount", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		up := signed(1)
		up.OneTime, up.KEMOneTime = preKeys(10, 11, 12), preKeys(20, 21)
		got := mustPutPreKeys(t, s, "pat", "phone", up)
		want := storage.PreKeyCounts{OneTime: 3, KEMOneTime: 2, SignedPreKeyID: 1, KEMPreKeyID: 2}
		if d := cmp.Diff(want, got, ignoreTimes...); d != "" || got.SignedPreKeyAt.IsZero() {
			t.Errorf("PutPreKeys counts at %v (-want +got):\n%s", got.SignedPreKeyAt, d)
		}
		if d := cmp.Diff(got, counts(t, s, "pat", "phone")); d != "" {
			t.Errorf("PreKeyCounts differs from what PutPreKeys answered (-put +counts):\n%s", d)
		}
		if c := counts(t, s, "pat", "tablet"); c != (storage.PreKeyCounts{}) {
			t.Errorf("a device without prekeys counts %+v", c)
		}
	}},
	{"SignedReplaced", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		first := mustPutPreKeys(t, s, "pat", "phone", signed(1))
		spk := preKey(7)
		got := mustPutPreKeys(t, s, "pat", "phone", storage.PreKeyUpload{SignedPreKey: &spk})
		if got.SignedPreKeyID != 7 || got.KEMPreKeyID != 2 || got.SignedPreKeyAt.Before(first.SignedPreKeyAt) {
			t.Errorf("counts after a new signed prekey: %+v, before %+v", got, first)
		}
		b := claim(t, s, "pat", "phone").Bundles
		if len(b) != 1 || b[0].SignedPreKey.ID != 7 || b[0].KEMPreKey.ID != 2 {
			t.Errorf("bundle after a new signed prekey: %+v", b)
		}
	}},
	{"NotYoursIsNotFound", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "old", 4), 16))
		noErr(t, "DeleteDevice", s.DeleteDevice(t.Context(), "pat", "old"))
		for _, c := range []struct{ user, device string }{
			{"pat", "laptop"}, {"pat", "nothing"}, {"pat", "old"}, {"nobody", "phone"},
		} {
			_, err := s.PutPreKeys(t.Context(), c.user, c.device, signed(1), maxOneTime)
			checkErr(t, "PutPreKeys for "+c.user+"/"+c.device, err, storage.ErrNotFound)
			_, err = s.PreKeyCounts(t.Context(), c.user, c.device)
			checkErr(t, "PreKeyCounts for "+c.user+"/"+c.device, err, storage.ErrNotFound)
		}
	}},
	{"RepeatedIDConflictsAllOrNothing", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		up := signed(1)
		up.OneTime, up.KEMOneTime = preKeys(10, 11), preKeys(10)
		before := mustPutPreKeys(t, s, "pat", "phone", up)
		for name, bad := range map[string]storage.PreKeyUpload{
			"a stored one-time id":        {SignedPreKey: &storage.PreKey{ID: 5}, OneTime: preKeys(12, 11)},
			"a stored ML-KEM one-time id": {KEMOneTime: preKeys(30, 10), OneTime: preKeys(13)},
			"an id given twice":           {OneTime: preKeys(14, 15, 14)},
		} {
			_, err := s.PutPreKeys(t.Context(), "pat", "phone", bad, maxOneTime)
			checkErr(t, "PutPreKeys with "+name, err, storage.ErrConflict)
		}
		if d := cmp.Diff(before, counts(t, s, "pat", "phone")); d != "" {
			t.Errorf("a refused upload changed the device's prekeys (-before +after):\n%s", d)
		}
		// Kinds and devices number their keys apart.
		mustPutPreKeys(t, s, "pat", "phone", storage.PreKeyUpload{KEMOneTime: preKeys(11)})
		mustPutPreKeys(t, s, "pat", "tablet", storage.PreKeyUpload{OneTime: preKeys(10)})
	}},
	{"FullPastMax", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		up := storage.PreKeyUpload{OneTime: preKeys(1, 2, 3), KEMOneTime: preKeys(1)}
		_, err := s.PutPreKeys(t.Context(), "pat", "phone", up, 5)
		noErr(t, "PutPreKeys", err)
		for name, bad := range map[string]storage.PreKeyUpload{
			"X25519": {OneTime: preKeys(4, 5, 6)},
			"ML-KEM": {KEMOneTime: preKeys(2, 3, 4, 5, 6)},
		} {
			_, err := s.PutPreKeys(t.Context(), "pat", "phone", bad, 5)
			checkErr(t, "PutPreKeys past max "+name, err, storage.ErrFull)
		}
		got, err := s.PutPreKeys(t.Context(), "pat", "phone", storage.PreKeyUpload{OneTime: preKeys(4, 5)}, 5)
		noErr(t, "PutPreKeys up to max", err)
		if got.OneTime != 5 || got.KEMOneTime != 1 {
			t.Errorf("counts up to max: %+v", got)
		}
	}},
	{"ClaimTakesLowestOnce", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		up := signed(1)
		up.OneTime, up.KEMOneTime = preKeys(9, 3, 5), preKeys(40)
		mustPutPreKeys(t, s, "pat", "phone", up)
		dev := device("pat", "phone", 1)
		ot := func(id uint32) *storage.PreKey { k := preKey(id); return &k }
		want := []storage.Bundle{
			{Device: dev, SignedPreKey: preKey(1), KEMPreKey: preKey(40), KEMOneTime: true, OneTime: ot(3),
				Left: storage.PreKeyCounts{OneTime: 2, SignedPreKeyID: 1, KEMPreKeyID: 2}},
			{Device: dev, SignedPreKey: preKey(1), KEMPreKey: preKey(2), OneTime: ot(5),
				Left: storage.PreKeyCounts{OneTime: 1, SignedPreKeyID: 1, KEMPreKeyID: 2}},
			{Device: dev, SignedPreKey: preKey(1), KEMPreKey: preKey(2), OneTime: ot(9),
				Left: storage.PreKeyCounts{SignedPreKeyID: 1, KEMPreKeyID: 2}},
			{Device: dev, SignedPreKey: preKey(1), KEMPreKey: preKey(2),
				Left: storage.PreKeyCounts{SignedPreKeyID: 1, KEMPreKeyID: 2}},
		}
		for i, w := range want {
			cl := claim(t, s, "pat", "phone")
			if d := cmp.Diff(storage.Claim{Bundles: []storage.Bundle{w}}, cl, ignoreTimes...); d != "" {
				t.Errorf("claim %d (-want +got):\n%s", i+1, d)
			}
		}
	}},
	{"ClaimMissing", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "old", 4), 16))
		mustPutPreKeys(t, s, "pat", "old", signed(1))
		noErr(t, "DeleteDevice", s.DeleteDevice(t.Context(), "pat", "old"))
		mustPutPreKeys(t, s, "pat", "tablet", signed(1))
		mustPutPreKeys(t, s, "doc", "laptop", signed(1))
		// The phone has one-time keys and a signed prekey but no ML-KEM one:
		// it cannot be claimed, and keeps its keys.
		spk := preKey(1)
		mustPutPreKeys(t, s, "pat", "phone", storage.PreKeyUpload{SignedPreKey: &spk, OneTime: preKeys(5)})

		all := claim(t, s, "pat")
		if len(all.Bundles) != 1 || all.Bundles[0].Device.ID != "tablet" ||
			!slices.Equal(all.Missing, []string{"phone"}) {
			t.Errorf("claim of all of pat's devices: %+v", all)
		}
		named := claim(t, s, "pat", "zz", "tablet", "laptop", "old", "phone", "tablet")
		if len(named.Bundles) != 1 || named.Bundles[0].Device.ID != "tablet" ||
			!slices.Equal(named.Missing, []string{"laptop", "old", "phone", "zz"}) {
			t.Errorf("claim of named devices: bundles %+v, missing %v", named.Bundles, named.Missing)
		}
		if c := counts(t, s, "pat", "phone"); c.OneTime != 1 {
			t.Errorf("a device that cannot be claimed lost a one-time key: %+v", c)
		}
		if none := claim(t, s, "nobody"); len(none.Bundles)+len(none.Missing) != 0 {
			t.Errorf("claim of a user without devices: %+v", none)
		}
	}},
	{"ClaimConcurrent", func(t *testing.T, s storage.Store) {
		// 20 claimers at once, 60 claims in all, from a device with 50
		// one-time keys of each kind: each key is handed out once, and
		// the last 10 bundles have none.
		withDevices(t, s)
		up := signed(1000)
		for id := uint32(1); id <= 50; id++ {
			up.OneTime = append(up.OneTime, preKey(id))
			up.KEMOneTime = append(up.KEMOneTime, preKey(100+id))
		}
		mustPutPreKeys(t, s, "pat", "phone", up)

		const claimers, each = 20, 3
		bundles := make(chan storage.Bundle, claimers*each)
		errs := make(chan error, claimers*each)
		var wg sync.WaitGroup
		for range claimers {
			wg.Go(func() {
				for range each {
					cl, err := s.ClaimBundles(t.Context(), "pat", []string{"phone"})
					if err != nil || len(cl.Bundles) != 1 {
						errs <- fmt.Errorf("claim: %+v, %w", cl, err)
						continue
					}
					bundles <- cl.Bundles[0]
				}
			})
		}
		wg.Wait()
		close(bundles)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		checkClaimed(t, bundles, 50, 1001)
		if c := counts(t, s, "pat", "phone"); c.OneTime != 0 || c.KEMOneTime != 0 {
			t.Errorf("one-time keys left after the claims: %+v", c)
		}
	}},
	{"DeleteDeviceDeletesPreKeys", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		up := signed(1)
		up.OneTime = preKeys(5)
		mustPutPreKeys(t, s, "pat", "phone", up)
		noErr(t, "DeleteDevice", s.DeleteDevice(t.Context(), "pat", "phone"))
		_, err := s.PreKeyCounts(t.Context(), "pat", "phone")
		checkErr(t, "PreKeyCounts of a retired device", err, storage.ErrNotFound)
		if cl := claim(t, s, "pat", "phone"); len(cl.Bundles) != 0 {
			t.Errorf("a retired device was claimed: %+v", cl)
		}
	}},
}

// checkClaimed checks concurrent claims from keys 1..n of each kind (ML-KEM
// ones numbered from 101) and a last-resort ML-KEM key lastResort: every
// key handed out once, and bundles past n without one-time keys.
func checkClaimed(t *testing.T, bundles <-chan storage.Bundle, n int, lastResort uint32) {
	t.Helper()
	seen, kemSeen := map[uint32]int{}, map[uint32]int{}
	var without, kemWithout int
	for b := range bundles {
		if b.OneTime == nil {
			without++
		} else {
			seen[b.OneTime.ID]++
		}
		switch {
		case !b.KEMOneTime && b.KEMPreKey.ID == lastResort:
			kemWithout++
		case b.KEMOneTime && b.KEMPreKey.ID > 100:
			kemSeen[b.KEMPreKey.ID]++
		default:
			t.Errorf("bundle with ML-KEM key %d (one-time %t)", b.KEMPreKey.ID, b.KEMOneTime)
		}
	}
	for id := uint32(1); id <= uint32(n); id++ {
		if seen[id] != 1 || kemSeen[100+id] != 1 {
			t.Errorf("one-time key %d handed out %d times, ML-KEM one %d times", id, seen[id], kemSeen[100+id])
		}
	}
	if len(seen) != n || len(kemSeen) != n || without != 10 || kemWithout != 10 {
		t.Errorf("%d and %d distinct one-time keys, %d and %d bundles without; want %d and 10",
			len(seen), len(kemSeen), without, kemWithout, n)
	}
}

// deviceList lists devices of withDevices by id, with their keys.
func deviceList(user string, version uint64, key byte, ids ...string) storage.DeviceList {
	l := storage.DeviceList{User: user, UserKey: []byte{key, 'u'}, Version: version, Signature: []byte{key, 's'}}
	keys := map[string]byte{"phone": 1, "tablet": 2, "laptop": 3}
	for _, id := range ids {
		d := device(user, id, keys[id])
		l.Devices = append(l.Devices, storage.DeviceListEntry{ID: id, SigningKey: d.SigningKey,
			ExchangeKey: d.ExchangeKey})
	}
	return l
}

func getList(t *testing.T, s storage.Store, user string) storage.DeviceList {
	t.Helper()
	l, err := s.GetDeviceList(t.Context(), user)
	noErr(t, "GetDeviceList", err)
	return l
}

var deviceListCases = []testCase{
	{"PutThenGet", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		want := deviceList("pat", 1, 1, "phone", "tablet")
		want.UpdatedAt = t0
		prev, err := s.PutDeviceList(t.Context(), want)
		noErr(t, "PutDeviceList", err)
		if prev.Version != 0 {
			t.Errorf("the first list replaced %+v", prev)
		}
		if d := cmp.Diff(want, getList(t, s, "pat"), diffOpts...); d != "" {
			t.Errorf("GetDeviceList (-want +got):\n%s", d)
		}
		later := deviceList("pat", 2, 1, "tablet")
		_, err = s.PutDeviceList(t.Context(), later)
		noErr(t, "PutDeviceList", err)
		if got := getList(t, s, "pat"); got.Version != 2 || len(got.Devices) != 1 || got.UpdatedAt.IsZero() {
			t.Errorf("GetDeviceList after a second list: %+v", got)
		}
	}},
	{"NoneIsNotFound", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		_, err := s.GetDeviceList(t.Context(), "pat")
		checkErr(t, "GetDeviceList of a user without one", err, storage.ErrNotFound)
	}},
	{"VersionMustBeNext", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		_, err := s.PutDeviceList(t.Context(), deviceList("pat", 2, 1, "phone"))
		checkErr(t, "a first list at version 2", err, storage.ErrConflict)
		for v := uint64(1); v <= 5; v++ {
			_, err := s.PutDeviceList(t.Context(), deviceList("pat", v, 1, "phone"))
			noErr(t, fmt.Sprint("PutDeviceList of version ", v), err)
		}
		// Not above, and not a jump: a holder of the user's token cannot
		// push the version to the top and lock the list.
		for _, v := range []uint64{5, 4, 1, 7, 1 << 63, ^uint64(0)} {
			prev, err := s.PutDeviceList(t.Context(), deviceList("pat", v, 1, "phone", "tablet"))
			checkErr(t, fmt.Sprint("PutDeviceList of version ", v), err, storage.ErrConflict)
			if prev.Version != 5 {
				t.Errorf("a refused list names the stored one as version %d", prev.Version)
			}
		}
		prev, err := s.PutDeviceList(t.Context(), deviceList("pat", 6, 2, "tablet"))
		noErr(t, "PutDeviceList of the next version with another user key", err)
		if d := cmp.Diff(deviceList("pat", 5, 1, "phone"), prev,
			append(diffOpts, cmpopts.IgnoreFields(storage.DeviceList{}, "UpdatedAt"))...); d != "" {
			t.Errorf("the list replaced (-want +got):\n%s", d)
		}
	}},
	{"EntriesMustMatchDevices", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		noErr(t, "PutDevice", s.PutDevice(t.Context(), device("pat", "old", 4), 16))
		noErr(t, "DeleteDevice", s.DeleteDevice(t.Context(), "pat", "old"))
		_, err := s.PutDeviceList(t.Context(), deviceList("pat", 1, 1, "phone"))
		noErr(t, "PutDeviceList", err)
		otherKeys := deviceList("pat", 2, 1, "phone", "tablet")
		otherKeys.Devices[1].ExchangeKey = []byte{9}
		retired := deviceList("pat", 2, 1, "phone")
		retired.Devices = append(retired.Devices, storage.DeviceListEntry{ID: "old", SigningKey: []byte{4, 1, 2, 3},
			ExchangeKey: []byte{4, 4, 5, 6}})
		for name, l := range map[string]storage.DeviceList{
			"an unknown device":        deviceList("pat", 2, 1, "phone", "watch"),
			"another user's device":    deviceList("pat", 2, 1, "phone", "laptop"),
			"a device with other keys": otherKeys,
			"a retired device":         retired,
		} {
			_, err := s.PutDeviceList(t.Context(), l)
			checkErr(t, "PutDeviceList naming "+name, err, storage.ErrConflict)
		}
		if got := getList(t, s, "pat"); got.Version != 1 {
			t.Errorf("a refused list was stored: %+v", got)
		}
	}},
	{"EmptyOrRepeatedRefused", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		for name, l := range map[string]storage.DeviceList{
			"no devices":     deviceList("pat", 1, 1),
			"a device twice": deviceList("pat", 1, 1, "phone", "phone"),
			"version 0":      deviceList("pat", 0, 1, "phone"),
			"no user":        deviceList("", 1, 1, "phone"),
			"an empty id":    {User: "pat", Version: 1, Devices: []storage.DeviceListEntry{{}}},
		} {
			if _, err := s.PutDeviceList(t.Context(), l); err == nil {
				t.Errorf("PutDeviceList with %s succeeded", name)
			}
		}
		_, err := s.GetDeviceList(t.Context(), "pat")
		checkErr(t, "GetDeviceList after refused lists", err, storage.ErrNotFound)
	}},
	{"UpdatedAtDefaults", func(t *testing.T, s storage.Store) {
		withDevices(t, s)
		_, err := s.PutDeviceList(t.Context(), deviceList("pat", 1, 1, "phone"))
		noErr(t, "PutDeviceList", err)
		if got := getList(t, s, "pat"); got.UpdatedAt.IsZero() {
			t.Errorf("UpdatedAt %v, want the time of PutDeviceList", got.UpdatedAt)
		}
	}},
}
