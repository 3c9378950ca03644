package clientsdk

import (
	"context"
	"net/http"
	"net/url"

	"github.com/bedside/bedside/hub/wire"
)

// The key directory of end-to-end encryption v1 (docs/api.md, "Key
// directory"). These calls carry public keys and signatures made elsewhere
// (package e2ee) to and from the hub; they sign and check nothing
// themselves. None is retried on its own: an upload or a claim that may
// have landed is not repeated blindly.

// UploadPreKeys publishes prekeys of this device: signed prekeys replace
// the current ones, one-time keys are added. It answers the counts as they
// then stand; a one-time id stored already, or a supply past the cap, is
// ErrConflict.
func (c *Client) UploadPreKeys(ctx context.Context, req wire.PutPreKeysRequest) (wire.PreKeyCounts, error) {
	var counts wire.PreKeyCounts
	_, err := c.call(ctx, request{
		method: http.MethodPut,
		path:   "/v1/devices/" + url.PathEscape(c.DeviceID()) + "/prekeys",
		body:   req,
		out:    &counts,
	}, once)
	return counts, err
}

// PreKeyCounts tells where this device's prekeys stand; Low says to upload
// more one-time keys.
func (c *Client) PreKeyCounts(ctx context.Context) (wire.PreKeyCounts, error) {
	var counts wire.PreKeyCounts
	_, err := c.call(ctx, request{
		method: http.MethodGet,
		path:   "/v1/devices/" + url.PathEscape(c.DeviceID()) + "/prekeys",
		out:    &counts,
	}, bounded)
	return counts, err
}

// ClaimBundles claims a prekey bundle of each of user's devices named in
// devices (none: all of them), to start sessions with them. Each claim
// uses up one-time keys, so the bundles should be used, not fetched ahead.
// Devices that cannot be claimed are listed in BundleList.Missing.
func (c *Client) ClaimBundles(ctx context.Context, user string, devices ...string) (wire.BundleList, error) {
	return c.claimBundles(ctx, once, user, devices...)
}

// claimBundles claims bundles under a retry policy. Seal retries: a claim
// whose answer was lost wastes one-time keys, which beats failing a send.
func (c *Client) claimBundles(ctx context.Context, p retryPolicy, user string,
	devices ...string) (wire.BundleList, error) {
	var body any
	if len(devices) > 0 {
		body = wire.ClaimBundlesRequest{Devices: devices}
	}
	var l wire.BundleList
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/users/" + url.PathEscape(user) + "/bundles",
		body:   body,
		out:    &l,
	}, p)
	return l, err
}

// PublishDeviceList stores the caller's signed device list and answers it
// as stored. A version other than the stored one's plus one (1 for the
// first), or an entry that does not match a registered device of the
// caller, is ErrConflict.
func (c *Client) PublishDeviceList(ctx context.Context, l wire.SignedDeviceList) (wire.SignedDeviceList, error) {
	var out wire.SignedDeviceList
	_, err := c.call(ctx, request{
		method: http.MethodPut,
		path:   "/v1/me/device-list",
		body:   l,
		out:    &out,
	}, once)
	return out, err
}

// DeviceList fetches user's signed device list, as the hub holds it: the
// caller checks its signature. ErrNotFound when the user has none, or
// shares no session with the caller.
func (c *Client) DeviceList(ctx context.Context, user string) (wire.SignedDeviceList, error) {
	var l wire.SignedDeviceList
	_, err := c.call(ctx, request{
		method: http.MethodGet,
		path:   "/v1/users/" + url.PathEscape(user) + "/device-list",
		out:    &l,
	}, bounded)
	return l, err
}
