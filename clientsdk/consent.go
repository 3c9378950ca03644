package clientsdk

import (
	"context"
	"net/http"
	"net/url"

	"github.com/bedside/bedside/hub/wire"
)

// GrantConsent records the caller's consent to scope (wire.ScopeChat when
// empty) under the given policy version. A patient must hold an active chat
// consent before anyone can send in their sessions.
func (c *Client) GrantConsent(ctx context.Context, scope, policyVersion string) (wire.Consent, error) {
	if scope == "" {
		scope = wire.ScopeChat
	}
	var rec wire.Consent
	_, err := c.call(ctx, request{
		method: http.MethodPost,
		path:   "/v1/consents",
		body:   wire.ConsentRequest{Scope: scope, PolicyVersion: policyVersion},
		out:    &rec,
	}, once)
	if err != nil {
		return wire.Consent{}, err
	}
	return rec, nil
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
