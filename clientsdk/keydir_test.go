//go:build !js

package clientsdk

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/internal/testserver"
)

func testPreKey(id uint32, size int) wire.PreKey {
	return wire.PreKey{ID: id, Key: bytes.Repeat([]byte{byte(id)}, size),
		Signature: bytes.Repeat([]byte{9}, wire.SignatureSize)}
}

// TestIntegrationKeyDirectory carries prekeys and a device list through a
// real hub: Register uploads the patient device's prekeys and signed list,
// the clinician claims and reads them, and the key directory's own checks
// hold for what an application uploads by hand.
func TestIntegrationKeyDirectory(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, _ := chatPair(t, s)

	counts, err := patient.PreKeyCounts(ctx)
	if err != nil || counts.OneTime != wire.PreKeyBatch || counts.KEMOneTime != wire.PreKeyBatch ||
		counts.SignedPreKeyID == 0 || counts.KEMPreKeyID == 0 || counts.Low {
		t.Fatalf("after Register, PreKeyCounts = %+v, %v; want a full batch and signed keys", counts, err)
	}
	extra := wire.PutPreKeysRequest{OneTime: []wire.PreKey{testPreKey(60000, wire.X25519KeySize)}}
	if got, err := patient.UploadPreKeys(ctx, extra); err != nil || got.OneTime != counts.OneTime+1 {
		t.Fatalf("UploadPreKeys = %+v, %v", got, err)
	}
	if _, err := patient.UploadPreKeys(ctx, extra); !errors.Is(err, ErrConflict) {
		t.Errorf("uploading the same one-time key again: %v, want ErrConflict", err)
	}

	got, err := clinician.ClaimBundles(ctx, "pat")
	if err != nil || len(got.Bundles) != 1 || got.Bundles[0].Device != patient.DeviceID() ||
		got.Bundles[0].OneTime == nil || !got.Bundles[0].KEMOneTime {
		t.Fatalf("ClaimBundles = %+v, %v; want one bundle with one-time keys", got, err)
	}
	if again, err := patient.PreKeyCounts(ctx); err != nil || again.OneTime != counts.OneTime {
		t.Errorf("after a claim, PreKeyCounts = %+v, %v; want %d one-time keys", again, err, counts.OneTime)
	}
	if got, err := clinician.ClaimBundles(ctx, "pat", "nope"); err != nil || len(got.Bundles) != 0 ||
		!cmp.Equal(got.Missing, []string{"nope"}) {
		t.Errorf("ClaimBundles of an unknown device = %+v, %v", got, err)
	}

	stored, err := clinician.DeviceList(ctx, "pat")
	if err != nil || stored.User != "pat" || stored.Version != 1 || len(stored.Devices) != 1 ||
		stored.Devices[0].ID != patient.DeviceID() {
		t.Fatalf("DeviceList = %+v, %v; want version 1 naming the patient's device", stored, err)
	}
	if _, err := patient.PublishDeviceList(ctx, stored); !errors.Is(err, ErrConflict) {
		t.Errorf("publishing the same version again: %v, want ErrConflict", err)
	}
	if _, err := clinician.DeviceList(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeviceList of a stranger: %v, want ErrNotFound", err)
	}
}

// TestIntegrationPreKeysTopUp: claims drain the patient device's one-time
// prekeys; the hub tells its listener the supply runs low, and the SDK
// uploads a fresh batch on its own.
func TestIntegrationPreKeysTopUp(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, _ := chatPair(t, s)
	var r recorder
	listen(t, patient, &r)
	waitFor(t, eventually, "listening", func() bool { return r.count(EventConnected, nil) > 0 })

	for range wire.PreKeyBatch - wire.PreKeyLowWater + 1 {
		if _, err := clinician.ClaimBundles(ctx, "pat"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, eventually, "the listener to top the prekeys up", func() bool {
		counts, err := patient.PreKeyCounts(ctx)
		return err == nil && counts.OneTime >= wire.PreKeyBatch-1 && counts.KEMOneTime >= wire.PreKeyBatch-1
	})
	if n := r.count(EventError, nil); n != 0 {
		t.Fatalf("%d error events while topping up", n)
	}
}
