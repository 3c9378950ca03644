package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
)

// The key directory of end-to-end encryption (docs/api.md, "Key
// directory"): devices publish signed prekeys, senders claim bundles to
// start sessions with devices that are offline, users publish a signed list
// of their devices. The hub checks shapes and sizes; the signatures are for
// clients to check, and it never could.

const (
	// maxPreKeysBody bounds the JSON of a prekey upload: a full batch of
	// each kind with both signed prekeys is about 195 KiB in base64.
	maxPreKeysBody = 256 << 10
	// maxClaimDevices bounds the device ids one claim may name.
	maxClaimDevices = 100
	// deviceListEntryJSON bounds one entry of a device list in JSON.
	deviceListEntryJSON = 512
)

// Label values of the prekey metrics.
const (
	kindX25519 = "x25519"
	kindMLKEM  = "mlkem768"
)

// putPreKeys adds to the prekeys of one of the caller's devices: signed
// prekeys replace the current ones, one-time keys are added. All or
// nothing.
func (h *Hub) putPreKeys(w http.ResponseWriter, r *http.Request, c caller) error {
	id := r.PathValue("device")
	if err := validID("device id", id); err != nil {
		return err
	}
	var req wire.PutPreKeysRequest
	if err := decodeJSON(w, r, maxPreKeysBody, &req); err != nil {
		return err
	}
	up, err := preKeyUpload(&req)
	if err != nil {
		return err
	}

	ctx := r.Context()
	counts, err := h.store.PutPreKeys(ctx, c.user, id, up, wire.MaxOneTimePreKeys)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return notFound("device")
	case errors.Is(err, storage.ErrConflict):
		return errorf(http.StatusConflict, wire.CodeConflict,
			"a one-time prekey id of this upload is stored for device %s already; number new keys afresh", id)
	case errors.Is(err, storage.ErrFull):
		return h.preKeysFull(ctx, c.user, id)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, wireCounts(id, counts))
	return nil
}

// preKeysFull words the refusal of an upload that would store more one-time
// keys of a kind than allowed, with where the device stands.
func (h *Hub) preKeysFull(ctx context.Context, user, device string) error {
	counts, err := h.store.PreKeyCounts(ctx, user, device)
	if err != nil {
		return err
	}
	return errorf(http.StatusConflict, wire.CodeConflict,
		"device %s holds %d X25519 and %d ML-KEM one-time prekeys; this upload would pass %d of a kind: "+
			"upload fewer", device, counts.OneTime, counts.KEMOneTime, wire.MaxOneTimePreKeys)
}

// preKeyUpload checks an upload's shapes and sizes and turns it into the
// store's. It touches no storage.
func preKeyUpload(req *wire.PutPreKeysRequest) (storage.PreKeyUpload, error) {
	if req.SignedPreKey == nil && req.KEMPreKey == nil && len(req.OneTime)+len(req.KEMOneTime) == 0 {
		return storage.PreKeyUpload{}, badRequest(
			"nothing to upload: set signedPreKey, kemPreKey, oneTime or kemOneTime")
	}
	var up storage.PreKeyUpload
	var err error
	if req.SignedPreKey != nil {
		if up.SignedPreKey, err = checkPreKey("signedPreKey", *req.SignedPreKey, wire.X25519KeySize); err != nil {
			return storage.PreKeyUpload{}, err
		}
	}
	if req.KEMPreKey != nil {
		if up.KEMPreKey, err = checkPreKey("kemPreKey", *req.KEMPreKey, wire.MLKEM768KeySize); err != nil {
			return storage.PreKeyUpload{}, err
		}
	}
	if up.OneTime, err = checkOneTime("oneTime", req.OneTime, wire.X25519KeySize); err != nil {
		return storage.PreKeyUpload{}, err
	}
	if up.KEMOneTime, err = checkOneTime("kemOneTime", req.KEMOneTime, wire.MLKEM768KeySize); err != nil {
		return storage.PreKeyUpload{}, err
	}
	return up, nil
}

// checkOneTime checks a batch of one-time keys of one kind: at most
// PreKeyBatch, each id once.
func checkOneTime(field string, keys []wire.PreKey, size int) ([]storage.PreKey, error) {
	if len(keys) > wire.PreKeyBatch {
		return nil, badRequest("%s holds %d keys, at most %d an upload", field, len(keys), wire.PreKeyBatch)
	}
	out := make([]storage.PreKey, 0, len(keys))
	seen := make(map[uint32]bool, len(keys))
	for i, k := range keys {
		pk, err := checkPreKey(fmt.Sprintf("%s[%d]", field, i), k, size)
		if err != nil {
			return nil, err
		}
		if seen[k.ID] {
			return nil, errorf(http.StatusConflict, wire.CodeConflict, "%s names id %d twice", field, k.ID)
		}
		seen[k.ID] = true
		out = append(out, *pk)
	}
	return out, nil
}

// checkPreKey checks one prekey: an id, a key of size bytes (an X25519 key
// not all zeros), a signature of SignatureSize bytes.
func checkPreKey(field string, k wire.PreKey, size int) (*storage.PreKey, error) {
	switch {
	case k.ID == 0:
		return nil, badRequest("%s: id must be 1-%d", field, uint32(1<<32-1))
	case len(k.Key) != size:
		return nil, badRequest("%s: key must be %d bytes, not %d", field, size, len(k.Key))
	case size == wire.X25519KeySize && bytes.Equal(k.Key, make([]byte, size)):
		return nil, badRequest("%s: key is all zeros", field)
	case len(k.Signature) != wire.SignatureSize:
		return nil, badRequest("%s: signature must be %d bytes, not %d", field, wire.SignatureSize,
			len(k.Signature))
	}
	return &storage.PreKey{ID: k.ID, Key: k.Key, Signature: k.Signature}, nil
}

// getPreKeys tells where the prekeys of one of the caller's devices stand.
func (h *Hub) getPreKeys(w http.ResponseWriter, r *http.Request, c caller) error {
	id := r.PathValue("device")
	if err := validID("device id", id); err != nil {
		return err
	}
	counts, err := h.store.PreKeyCounts(r.Context(), c.user, id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("device")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireCounts(id, counts))
	return nil
}

// claimBundles hands out a bundle of each of a user's devices that can be
// claimed, taking one one-time key of each kind where any is left. A device
// left short of one-time keys is told over its WebSocket.
// Claims need a shared open session (a closed one takes no messages) and
// are budgeted per claimer (claimBudget), so no member can drain another's
// one-time keys in a loop.
func (h *Hub) claimBundles(w http.ResponseWriter, r *http.Request, c caller) error {
	user, err := h.keysOf(r, c)
	if err != nil {
		return err
	}
	if err := h.mayClaim(r.Context(), c, user); err != nil {
		return err
	}
	ctx := r.Context()
	var req wire.ClaimBundlesRequest
	if err := decodeOptionalJSON(w, r, maxSmallBody, &req); err != nil {
		return err
	}
	devices, err := claimDevices(req.Devices)
	if err != nil {
		return err
	}

	cl, err := h.store.ClaimBundles(ctx, user, devices)
	if err != nil {
		return err
	}
	out := wire.BundleList{Bundles: make([]wire.Bundle, 0, len(cl.Bundles)), Missing: cl.Missing}
	for _, b := range cl.Bundles {
		out.Bundles = append(out.Bundles, wireBundle(b))
		h.countClaim(b)
		if left := wireCounts(b.Device.ID, b.Left); left.Low {
			h.publish(ctx, Event{Users: []string{user}, ToDevice: b.Device.ID, PreKeys: &left})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// claimDevices checks the device ids a claim names; none means all (nil).
func claimDevices(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > maxClaimDevices {
		return nil, badRequest("devices names %d devices, at most %d", len(ids), maxClaimDevices)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if err := validID("device id", id); err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, badRequest("devices names %s twice", id)
		}
		seen[id] = true
	}
	return ids, nil
}

// countClaim counts the one-time keys a bundle took, and the supplies it
// found exhausted.
func (h *Hub) countClaim(b storage.Bundle) {
	for _, k := range []struct {
		kind string
		took bool
	}{{kindX25519, b.OneTime != nil}, {kindMLKEM, b.KEMOneTime}} {
		if k.took {
			h.metrics.preKeysClaimed.WithLabelValues(k.kind).Inc()
		} else {
			h.metrics.preKeysExhausted.WithLabelValues(k.kind).Inc()
		}
	}
}

// mayReadKeys lets c read user's keys: their own, or those of a user they
// share a session with. Anyone else gets 404, as for a user who does not
// exist, so that no one can probe the hub for who uses it.
func (h *Hub) mayReadKeys(ctx context.Context, c caller, user string) error {
	if user == c.user {
		return nil
	}
	shared, err := h.sharesSession(ctx, c.user, user)
	if err != nil {
		return err
	}
	if !shared {
		return notFound("user " + user)
	}
	return nil
}

// putDeviceList stores the caller's signed device list. Every entry must
// name a registered device of theirs with its keys, and the version must
// grow. Contacts are told; a list signed with another user key than the
// one before is audited on its own.
func (h *Hub) putDeviceList(w http.ResponseWriter, r *http.Request, c caller) error {
	var req wire.SignedDeviceList
	limit := int64(maxSmallBody + h.cfg.MaxDevicesPerUser*deviceListEntryJSON)
	if err := decodeJSON(w, r, limit, &req); err != nil {
		return err
	}
	if err := h.checkDeviceList(c, &req); err != nil {
		return err
	}
	l := storage.DeviceList{User: c.user, UserKey: req.UserKey, Version: req.Version,
		Signature: req.Signature, UpdatedAt: h.now().Round(0).UTC()}
	for _, e := range req.Devices {
		l.Devices = append(l.Devices, storage.DeviceListEntry{ID: e.ID, SigningKey: e.SigningKey,
			ExchangeKey: e.ExchangeKey})
	}

	ctx := r.Context()
	noteTarget(ctx, c.user)
	prev, err := h.store.PutDeviceList(ctx, l)
	switch {
	case errors.Is(err, storage.ErrConflict) && l.Version != prev.Version+1:
		return errorf(http.StatusConflict, wire.CodeConflict, "version %d is not the next after %d (want %d)",
			l.Version, prev.Version, prev.Version+1)
	case errors.Is(err, storage.ErrConflict):
		return h.deviceListConflict(ctx, l)
	case err != nil:
		return err
	}
	changed := prev.Version != 0 && !bytes.Equal(prev.UserKey, l.UserKey)
	if changed {
		noteAlso(ctx, "device_list.key_changed", c.user)
	}
	h.tellContacts(ctx, c.user, &wire.DeviceEvent{User: c.user, ListVersion: l.Version, KeyChanged: changed})
	writeJSON(w, http.StatusOK, wireDeviceList(l))
	return nil
}

// checkDeviceList checks a device list's shapes and sizes.
func (h *Hub) checkDeviceList(c caller, req *wire.SignedDeviceList) error {
	switch {
	case req.User != "" && req.User != c.user:
		return badRequest("user must be yours, %s, or left out", c.user)
	case len(req.UserKey) != keySize:
		return badRequest("userKey must be %d bytes, not %d", keySize, len(req.UserKey))
	case len(req.Signature) != wire.SignatureSize:
		return badRequest("signature must be %d bytes, not %d", wire.SignatureSize, len(req.Signature))
	case req.Version == 0:
		return badRequest("version must be at least 1")
	case len(req.Devices) == 0 || len(req.Devices) > h.cfg.MaxDevicesPerUser:
		return badRequest("devices must list 1-%d devices", h.cfg.MaxDevicesPerUser)
	}
	seen := make(map[string]bool, len(req.Devices))
	for _, e := range req.Devices {
		if err := validID("device id", e.ID); err != nil {
			return err
		}
		if seen[e.ID] {
			return badRequest("devices lists %s twice", e.ID)
		}
		seen[e.ID] = true
		if len(e.SigningKey) != keySize || len(e.ExchangeKey) != keySize {
			return badRequest("device %s: signingKey and exchangeKey must be %d bytes each", e.ID, keySize)
		}
	}
	return nil
}

// deviceListConflict names the entry of l that does not match the user's
// registered devices.
func (h *Hub) deviceListConflict(ctx context.Context, l storage.DeviceList) error {
	devs, err := h.store.ListDevices(ctx, l.User)
	if err != nil {
		return err
	}
	registered := make(map[string]storage.Device, len(devs))
	for _, d := range devs {
		registered[d.ID] = d
	}
	for _, e := range l.Devices {
		d, ok := registered[e.ID]
		if !ok {
			return errorf(http.StatusConflict, wire.CodeConflict,
				"device %s is not a registered device of yours", e.ID)
		}
		if !bytes.Equal(d.SigningKey, e.SigningKey) || !bytes.Equal(d.ExchangeKey, e.ExchangeKey) {
			return errorf(http.StatusConflict, wire.CodeConflict,
				"device %s is registered with other keys than the list gives", e.ID)
		}
	}
	return errorf(http.StatusConflict, wire.CodeConflict, "the list does not match your registered devices")
}

// keysOf returns the {user} of the request's path once the caller may
// read that user's keys: they are the user, or share a session with them.
func (h *Hub) keysOf(r *http.Request, c caller) (string, error) {
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		return "", err
	}
	return user, h.mayReadKeys(r.Context(), c, user)
}

// mayClaim refuses a claim outside a shared open session, or beyond the
// claimer's budget.
func (h *Hub) mayClaim(ctx context.Context, c caller, user string) error {
	if user != c.user {
		open, err := h.sharesOpenSession(ctx, c.user, user)
		if err != nil {
			return err
		}
		if !open {
			return notFound("an open session with " + user)
		}
	}
	if !h.claims.allow(c.user, h.now()) {
		return errorf(http.StatusTooManyRequests, wire.CodeRateLimited,
			"more than %d bundle claims at once; one more each %v", claimBurst, claimRefill)
	}
	return nil
}

// sharesOpenSession reports whether a and b are members of one open session.
func (h *Hub) sharesOpenSession(ctx context.Context, a, b string) (bool, error) {
	ss, err := h.store.ListSessions(ctx, a)
	if err != nil {
		return false, err
	}
	for _, s := range ss {
		if s.State != wire.StateOpen {
			continue
		}
		for _, m := range s.Members {
			if m.User == b {
				return true, nil
			}
		}
	}
	return false, nil
}

// getDeviceList answers a user's signed device list, to them and to those
// who share a session with them.
func (h *Hub) getDeviceList(w http.ResponseWriter, r *http.Request, c caller) error {
	user, err := h.keysOf(r, c)
	if err != nil {
		return err
	}
	ctx := r.Context()
	l, err := h.store.GetDeviceList(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("device list of " + user)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireDeviceList(l))
	return nil
}

// wireCounts words a device's prekey counts; Low says it should upload.
func wireCounts(device string, c storage.PreKeyCounts) wire.PreKeyCounts {
	out := wire.PreKeyCounts{Device: device, OneTime: c.OneTime, KEMOneTime: c.KEMOneTime,
		SignedPreKeyID: c.SignedPreKeyID, KEMPreKeyID: c.KEMPreKeyID,
		Low: c.OneTime < wire.PreKeyLowWater || c.KEMOneTime < wire.PreKeyLowWater}
	if !c.SignedPreKeyAt.IsZero() {
		at := c.SignedPreKeyAt
		out.SignedPreKeyAt = &at
	}
	return out
}

func wirePreKey(k storage.PreKey) wire.PreKey {
	return wire.PreKey{ID: k.ID, Key: k.Key, Signature: k.Signature}
}

func wireBundle(b storage.Bundle) wire.Bundle {
	out := wire.Bundle{Device: b.Device.ID, SigningKey: b.Device.SigningKey, ExchangeKey: b.Device.ExchangeKey,
		SignedPreKey: wirePreKey(b.SignedPreKey), KEMPreKey: wirePreKey(b.KEMPreKey), KEMOneTime: b.KEMOneTime}
	if b.OneTime != nil {
		ot := wirePreKey(*b.OneTime)
		out.OneTime = &ot
	}
	return out
}

func wireDeviceList(l storage.DeviceList) wire.SignedDeviceList {
	out := wire.SignedDeviceList{User: l.User, UserKey: l.UserKey, Version: l.Version,
		Devices: make([]wire.DeviceListEntry, 0, len(l.Devices)), Signature: l.Signature, UpdatedAt: l.UpdatedAt}
	for _, e := range l.Devices {
		out.Devices = append(out.Devices, wire.DeviceListEntry{ID: e.ID, SigningKey: e.SigningKey,
			ExchangeKey: e.ExchangeKey})
	}
	return out
}
