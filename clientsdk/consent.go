package clientsdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"

	"github.com/bedside/bedside/hub/wire"
)

// GrantConsent records the caller's consent to scope (wire.ScopeChat when
// empty) under the given policy version. A patient must hold an active chat
// consent before anyone can send in their sessions.
func (c *Client) GrantConsent(ctx context.Context, scope, policyVersion string) (wire.Consent, error) {
	return c.RecordConsent(ctx, wire.ConsentRequest{Scope: scope, PolicyVersion: policyVersion})
}

// RecordConsent records a consent with everything the hub keeps as evidence:
// req.PolicyHash (PolicyHash of the text shown), and this device unless
// req.Device names another. Staff recording a patient's consent name the
// patient in req.User. An empty scope means chat.
func (c *Client) RecordConsent(ctx context.Context, req wire.ConsentRequest) (wire.Consent, error) {
	if req.Scope == "" {
		req.Scope = wire.ScopeChat
	}
	if req.Device == "" && req.User == "" {
		req.Device = c.id.DeviceID()
	}
	var rec wire.Consent
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/consents",
		body:   req,
		out:    &rec,
	}, once)
	if err != nil {
		return wire.Consent{}, err
	}
	return rec, nil
}

// PolicyHash is the hex SHA-256 of a policy text, as ConsentRequest carries
// it: the evidence of exactly what the patient was shown.
func PolicyHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// WithdrawConsent ends the grant with the given id and returns the
// withdrawal record. It takes effect at once.
func (c *Client) WithdrawConsent(ctx context.Context, grantID string) (wire.Consent, error) {
	var rec wire.Consent
	_, err := c.call(ctx, request{
		method: http.MethodDelete,
		path:   "/v1/consents/" + url.PathEscape(grantID),
		out:    &rec,
	}, once)
	if err != nil {
		return wire.Consent{}, err
	}
	return rec, nil
}

// Consents lists the caller's consent records, oldest first.
func (c *Client) Consents(ctx context.Context) ([]wire.Consent, error) {
	var list wire.ConsentList
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/consents", out: &list}, bounded)
	if err != nil {
		return nil, err
	}
	return list.Consents, nil
}
