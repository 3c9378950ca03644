package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage"
)

// Errors of this package.
var (
	ErrClosed = errors.New("hub: closed")
	ErrConfig = errors.New("hub: bad configuration")
)

// apiError is an error a client is told about: a stable code from wire, the
// HTTP status it travels with, and a message for people.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func (e *apiError) wire() *wire.Error { return &wire.Error{Code: e.code, Message: e.msg} }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, wire.CodeBadRequest, format, args...)
}

func notFound(what string) *apiError {
	return errorf(http.StatusNotFound, wire.CodeNotFound, "%s not found", what)
}

var (
	errUnauthorized    = errorf(http.StatusUnauthorized, wire.CodeUnauthorized, "missing or invalid token")
	errExpired         = errorf(http.StatusUnauthorized, wire.CodeUnauthorized, "token expired")
	errConsentRequired = errorf(http.StatusForbidden, wire.CodeConsentRequired,
		"a patient in this session has no active chat consent")
	errUnavailable = errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "server is shutting down")
	errInternal    = errorf(http.StatusInternalServerError, wire.CodeInternal, "internal error")
)

// toAPIError turns any error into what the client is told. Errors that are no
// client's fault become errInternal; the caller logs those.
func toAPIError(err error) (e *apiError, internal bool) {
	if errors.As(err, &e) {
		return e, false
	}
	switch {
	case errors.Is(err, auth.ErrExpired):
		return errExpired, false
	case errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrBadClaims):
		return errUnauthorized, false
	case errors.Is(err, storage.ErrNotFound):
		return notFound("resource"), false
	case errors.Is(err, storage.ErrConsentRequired):
		return errConsentRequired, false
	case errors.Is(err, storage.ErrConflict):
		return errorf(http.StatusConflict, wire.CodeConflict, "conflicts with what is stored"), false
	case errors.Is(err, storage.ErrBeyondHead):
		return badRequest("readSeq is beyond the session's newest message"), false
	case errors.Is(err, storage.ErrSessionClosed):
		return errorf(http.StatusConflict, wire.CodeConflict, "session is closed"), false
	case errors.Is(err, storage.ErrClosed), errors.Is(err, ErrClosed):
		return errUnavailable, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, wire.CodeUnavailable, "request cancelled"), false
	}
	return errInternal, true
}

// writeJSON writes v with status. Encoding our own types cannot fail, and a
// failed write means the client left; neither is worth more than ignoring.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
