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
// real hub: uploaded by the patient's device, claimed and read by the
// clinician.
func TestIntegrationKeyDirectory(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	patient, clinician, _ := chatPair(t, s)

	spk, kem := testPreKey(1, wire.X25519KeySize), testPreKey(2, wire.MLKEM768KeySize)
	up := wire.PutPreKeysRequest{SignedPreKey: &spk, KEMPreKey: &kem,
		OneTime: []wire.PreKey{testPreKey(3, wire.X25519KeySize)}}
	counts, err := patient.UploadPreKeys(ctx, up)
	if err != nil || counts.OneTime != 1 || counts.SignedPreKeyID != 1 || !counts.Low {
		t.Fatalf("UploadPreKeys = %+v, %v", counts, err)
	}
	if _, err := patient.UploadPreKeys(ctx, up); !errors.Is(err, ErrConflict) {
		t.Errorf("uploading the same one-time key again: %v, want ErrConflict", err)
	}
	if again, err := patient.PreKeyCounts(ctx); err != nil || !cmp.Equal(again, counts) {
		t.Errorf("PreKeyCounts = %+v, %v; want %+v", again, err, counts)
	}

	got, err := clinician.ClaimBundles(ctx, "pat")
	ot := testPreKey(3, wire.X25519KeySize)
	pub := patient.id.Public()
	want := wire.BundleList{Bundles: []wire.Bundle{{Device: patient.DeviceID(), SigningKey: pub.SigningKey,
		ExchangeKey: pub.ExchangeKey, SignedPreKey: spk, KEMPreKey: kem, OneTime: &ot}}}
	if d := cmp.Diff(want, got); err != nil || d != "" {
		t.Errorf("ClaimBundles: %v (-want +got):\n%s", err, d)
	}
	if got, err := clinician.ClaimBundles(ctx, "pat", "nope"); err != nil || len(got.Bundles) != 0 ||
		!cmp.Equal(got.Missing, []string{"nope"}) {
		t.Errorf("ClaimBundles of an unknown device = %+v, %v", got, err)
	}

	list := wire.SignedDeviceList{UserKey: bytes.Repeat([]byte{4}, 32), Version: 1,
		Signature: bytes.Repeat([]byte{5}, wire.SignatureSize), Devices: []wire.DeviceListEntry{
			{ID: patient.DeviceID(), SigningKey: pub.SigningKey, ExchangeKey: pub.ExchangeKey}}}
	stored, err := patient.PublishDeviceList(ctx, list)
	if err != nil || stored.User != "pat" || stored.Version != 1 {
		t.Fatalf("PublishDeviceList = %+v, %v", stored, err)
	}
	if _, err := patient.PublishDeviceList(ctx, list); !errors.Is(err, ErrConflict) {
		t.Errorf("publishing the same version again: %v, want ErrConflict", err)
	}
	if read, err := clinician.DeviceList(ctx, "pat"); err != nil || !cmp.Equal(read, stored) {
		t.Errorf("DeviceList = %+v, %v; want %+v", read, err, stored)
	}
	if _, err := clinician.DeviceList(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeviceList of a stranger: %v, want ErrNotFound", err)
	}
}
