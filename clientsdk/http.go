package clientsdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bedside/bedside/hub/wire"
)

// maxResponseBytes bounds the body of any answer the client reads.
const maxResponseBytes = 32 << 20

// request is one HTTP call to the hub.
type request struct {
	method string
	path   string // below the server URL, such as /v1/sessions
	body   any    // encoded as JSON when not nil
	out    any    // decoded from a 2xx answer when not nil
}

// retryPolicy says how often a request is tried.
type retryPolicy int

const (
	once       retryPolicy = iota // not idempotent: one attempt
	bounded                       // idempotent: up to Config.MaxAttempts
	untilAcked                    // Send: until answered or ctx ends
)

// transientError marks a failure worth retrying: the network, a timeout, a
// 5xx or a 429. retryAfter is the hub's Retry-After, if it gave one.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// call sends r, retrying transient failures per policy, and returns the HTTP
// status of the final answer.
func (c *Client) call(ctx context.Context, r request, policy retryPolicy) (int, error) {
	var payload []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("clientsdk: encode %s %s: %w", r.method, r.path, err)
		}
		payload = b
	}

	for attempt := 0; ; attempt++ {
		if err := c.checkOpen(); err != nil {
			return 0, err
		}
		status, err := c.attempt(ctx, r, payload)
		var te *transientError
		if err == nil || !errors.As(err, &te) {
			return status, err
		}
		if ctx.Err() != nil {
			return status, errors.Join(ctx.Err(), te.err)
		}
		if policy == once || (policy == bounded && attempt+1 >= c.cfg.MaxAttempts) {
			return status, te.err
		}
		wait := c.cfg.Retry.Delay(attempt)
		if te.retryAfter > wait {
			wait = min(te.retryAfter, c.cfg.Retry.Max)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return 0, errors.Join(err, te.err)
		}
	}
}

// attempt makes one HTTP request.
func (c *Client) attempt(ctx context.Context, r request, payload []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()

	token, err := c.token(ctx)
	if err != nil {
		return 0, err
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint(r.path), body)
	if err != nil {
		return 0, fmt.Errorf("clientsdk: %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Bedside-Device", c.id.DeviceID())
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, &transientError{err: fmt.Errorf("clientsdk: %s %s: %w", r.method, r.path, err)}
	}
	defer resp.Body.Close()
	return resp.StatusCode, c.readAnswer(resp, r)
}

// readAnswer decodes a 2xx answer into r.out, or turns any other into an
// error.
func (c *Client) readAnswer(resp *http.Response, r request) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return &transientError{err: fmt.Errorf("clientsdk: %s %s: read answer: %w", r.method, r.path, err)}
	}
	if len(b) > maxResponseBytes {
		return fmt.Errorf("%w: %s %s: answer over %d bytes", ErrProtocol, r.method, r.path, maxResponseBytes)
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := decodeAPIError(resp.StatusCode, b)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return &transientError{err: apiErr, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
		}
		return apiErr
	}
	if r.out == nil {
		return nil
	}
	if err := json.Unmarshal(b, r.out); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrProtocol, r.method, r.path, err)
	}
	return nil
}

// isFinal reports whether err is an answer of the hub that trying again
// would not change: a 4xx other than 429.
func isFinal(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		apiErr.Status != http.StatusTooManyRequests
}

// decodeAPIError turns an error answer into an *APIError. A body that is not
// a wire.Error (a proxy's HTML page, say) still gives an error with a code
// derived from the status.
func decodeAPIError(status int, body []byte) *APIError {
	var we wire.Error
	if err := json.Unmarshal(body, &we); err != nil || we.Code == "" {
		return &APIError{Status: status, Code: statusCode(status), Message: http.StatusText(status)}
	}
	const maxLen = 1024
	return &APIError{Status: status, Code: clip(we.Code, maxLen), Message: clip(we.Message, maxLen)}
}

// statusCode guesses the wire code of a status that came without one.
func statusCode(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return wire.CodeUnauthorized
	case status == http.StatusForbidden:
		return wire.CodeForbidden
	case status == http.StatusNotFound:
		return wire.CodeNotFound
	case status == http.StatusConflict:
		return wire.CodeConflict
	case status == http.StatusRequestEntityTooLarge:
		return wire.CodeTooLarge
	case status == http.StatusServiceUnavailable:
		return wire.CodeUnavailable
	case status >= 500:
		return wire.CodeInternal
	default:
		return wire.CodeBadRequest
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// parseRetryAfter reads a Retry-After header in seconds; dates are ignored.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// endpoint joins the server URL and an API path whose variable parts the
// caller escaped with url.PathEscape.
func (c *Client) endpoint(path string) string {
	return strings.TrimSuffix(c.base.String(), "/") + path
}

// token returns the bearer token to use now.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.cfg.TokenSource == nil {
		return c.cfg.Token, nil
	}
	t, err := c.cfg.TokenSource(ctx)
	if err != nil {
		return "", fmt.Errorf("clientsdk: token source: %w", err)
	}
	return t, nil
}
