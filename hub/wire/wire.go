// Package wire holds the JSON shapes of Bedside's HTTP API and WebSocket frames.
//
// It is shared by the hub (the server) and the client SDK, and so it holds no
// server code and imports nothing of ours: the SDK compiles to WebAssembly
// with it and nothing more. Envelope headers and bodies are opaque bytes here;
// encoding/json carries them as standard base64.
package wire

import "time"

// Version is the protocol version spoken over /v1.
const Version = 1

// Error is the body of every error answer, over HTTP and in WebSocket error
// frames. Code is stable and meant for programs; Message is for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Error codes. The table in docs/api.md maps each to its HTTP status.
const (
	CodeBadRequest        = "bad_request"         // 400: malformed or invalid input
	CodeUnauthorized      = "unauthorized"        // 401: missing, expired or forged token
	CodeForbidden         = "forbidden"           // 403: authenticated but not allowed
	CodeConsentRequired   = "consent_required"    // 403: a patient member has no active consent
	CodeNotFound          = "not_found"           // 404: no such thing, or not yours
	CodeMethodNotAllowed  = "method_not_allowed"  // 405
	CodeConflict          = "conflict"            // 409: same clientMsgId, different content
	CodeNotPatient        = "not_patient"         // 409: erasure asked for a user who is not a patient
	CodeTooLarge          = "too_large"           // 413: envelope over the configured limit
	CodeTooManyRecipients = "too_many_recipients" // 400: more recipient headers than allowed
	CodeUnsupportedMedia  = "unsupported_media"   // 415: body is not application/json
	CodeUnavailable       = "unavailable"         // 503: shutting down or store unavailable
	CodeInternal          = "internal"            // 500: a bug or a failing disk, never bad input
	CodeDeviceOffline     = "device_offline"      // WebSocket only: a signal's device is not connected
	CodeRateLimited       = "rate_limited"        // 429: too many requests (signals) in a short time
	CodeRoomFull          = "room_full"           // WebSocket only: the call's SFU room has as many devices as it may
)

// Roles a token may carry.
const (
	RolePatient   = "patient"
	RoleClinician = "clinician"
	RoleAdmin     = "admin"
	RoleAuditor   = "auditor" // reads the audit trail, never envelopes
)

// Device is one device of a user with its public keys. The server stores
// public keys only; private keys never leave the device.
type Device struct {
	ID          string    `json:"id"`
	User        string    `json:"user"`
	SigningKey  []byte    `json:"signingKey"`  // Ed25519 public key, 32 bytes
	ExchangeKey []byte    `json:"exchangeKey"` // X25519 public key, 32 bytes
	CreatedAt   time.Time `json:"createdAt"`
}

// PutDeviceRequest is the body of PUT /v1/devices/{device}.
type PutDeviceRequest struct {
	SigningKey  []byte `json:"signingKey"`
	ExchangeKey []byte `json:"exchangeKey"`
}

// DeviceList answers GET /v1/users/{user}/devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// Session kinds and states.
const (
	KindChat    = "chat"
	KindCall    = "call" // a video visit; its envelopes carry the visit's chat and signalling
	StateOpen   = "open"
	StateClosed = "closed"
)

// CreateSessionRequest is the body of POST /v1/sessions. The caller is always a
// member, whether or not it names itself. Kind is "chat" (the default) or
// "call"; retention may differ by kind.
type CreateSessionRequest struct {
	Members []string `json:"members"`
	Kind    string   `json:"kind,omitempty"`
}

// Member is one member of a session with their read cursor.
// EmergencyUntil is set for a member let in by emergency access: they are a
// member until then.
type Member struct {
	User           string     `json:"user"`
	Role           string     `json:"role"`
	ReadSeq        uint64     `json:"readSeq"`
	EmergencyUntil *time.Time `json:"emergencyUntil,omitempty"`
}

// EmergencyRequest is the body of POST /v1/sessions/{id}/emergency: let
// User (a clinician) into the session for Minutes (default 60, at most
// 1440), for Reason (required, shown to the patient).
type EmergencyRequest struct {
	User    string `json:"user"`
	Reason  string `json:"reason"`
	Minutes int    `json:"minutes,omitempty"`
}

// EmergencyGrant is one grant of emergency ("break glass") access: who let
// User into the session, why, and for how long. Sessions keep every grant.
type EmergencyGrant struct {
	SessionID string    `json:"sessionId,omitempty"` // in an access report
	User      string    `json:"user"`
	By        string    `json:"by"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
}

// AccessReport answers GET /v1/me/access: who else acted on the caller's
// sessions or on the caller, newest first, and every emergency grant to
// the caller's sessions.
type AccessReport struct {
	Records         []AuditRecord    `json:"records"`
	EmergencyAccess []EmergencyGrant `json:"emergencyAccess"`
}

// Session describes a session as its members see it.
type Session struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	State     string     `json:"state"`
	Members   []Member   `json:"members"`
	HeadSeq   uint64     `json:"headSeq"`
	CreatedAt time.Time  `json:"createdAt"`
	ClosedAt  *time.Time `json:"closedAt,omitempty"` // set once closed: read-only
	LegalHold bool       `json:"legalHold,omitempty"`
	// EmergencyAccess lists every emergency grant to the session, current
	// or ended, oldest first.
	EmergencyAccess []EmergencyGrant `json:"emergencyAccess,omitempty"`
}

// LegalHoldRequest is the body of POST /v1/sessions/{id}/hold.
type LegalHoldRequest struct {
	Hold *bool `json:"hold"` // required: true sets the hold, false lifts it
}

// AddMemberRequest is the body of POST /v1/sessions/{id}/members.
type AddMemberRequest struct {
	User string `json:"user"`
}

// SessionList answers GET /v1/sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"`
}

// SendRequest is the body of POST /v1/sessions/{id}/messages and of a
// WebSocket send frame. Recipients maps a device id to that device's key
// header; header and body are opaque to the server.
type SendRequest struct {
	ClientMsgID  string            `json:"clientMsgId"`
	SenderDevice string            `json:"senderDevice"`
	Recipients   map[string][]byte `json:"recipients"`
	Body         []byte            `json:"body"`
}

// SendResponse acknowledges a durably stored message: 201 when new, 200 when
// it repeats an earlier send with the same clientMsgId.
type SendResponse struct {
	Seq uint64    `json:"seq"`
	TS  time.Time `json:"ts"`
}

// Message is one entry of a session log as one device receives it: only that
// device's header is included.
type Message struct {
	SessionID    string    `json:"sessionId"`
	Seq          uint64    `json:"seq"`
	TS           time.Time `json:"ts"`
	ClientMsgID  string    `json:"clientMsgId"`
	SenderUser   string    `json:"senderUser"`
	SenderDevice string    `json:"senderDevice"`
	Header       []byte    `json:"header,omitempty"`
	Body         []byte    `json:"body"`
}

// MessageList answers GET /v1/sessions/{id}/messages. HeadSeq is the session's
// newest seq when the page was read. A page may hold fewer messages than the
// limit asked for (the hub bounds a page's bytes), so callers page on, after
// the last seq they got, until they reach HeadSeq or get an empty page.
type MessageList struct {
	Messages []Message `json:"messages"`
	HeadSeq  uint64    `json:"headSeq"`
}

// ReceiptRequest is the body of PATCH /v1/sessions/{id}/receipts.
type ReceiptRequest struct {
	ReadSeq uint64 `json:"readSeq"`
}

// Receipt tells where a member's read cursor stands.
type Receipt struct {
	SessionID string `json:"sessionId"`
	User      string `json:"user"`
	ReadSeq   uint64 `json:"readSeq"`
}

// Consent scopes, record kinds and the ways a consent is recorded.
const (
	ScopeChat       = "chat"      // messages: the consent gate checks it
	ScopeVideo      = "video"     // calls
	ScopeReporting  = "reporting" // counted in de-identified reports
	ConsentGrant    = "grant"
	ConsentWithdraw = "withdraw"
	MethodInApp     = "in-app" // the patient, on one of their devices
	MethodStaff     = "staff"  // a staff member, named as the actor
)

// ConsentRequest is the body of POST /v1/consents. A patient records their
// own consent in the app (User empty); a clinician or admin records one a
// patient gave them in person or on paper, naming the patient in User.
type ConsentRequest struct {
	Scope         string `json:"scope"`
	PolicyVersion string `json:"policyVersion"`
	// PolicyHash is the hex SHA-256 of the policy text the patient was shown.
	PolicyHash string `json:"policyHash,omitempty"`
	User       string `json:"user,omitempty"`
	// Device is the patient's device the consent was given on (in-app).
	Device string `json:"device,omitempty"`
}

// Consent is one append-only consent record. A withdrawal is its own record
// whose Withdraws names the grant it ends; no record is ever edited.
type Consent struct {
	ID            string    `json:"id"`
	User          string    `json:"user"`
	Kind          string    `json:"kind"`
	Scope         string    `json:"scope"`
	PolicyVersion string    `json:"policyVersion,omitempty"`
	PolicyHash    string    `json:"policyHash,omitempty"`
	Method        string    `json:"method"`
	Actor         string    `json:"actor"`
	Device        string    `json:"device,omitempty"`
	Withdraws     string    `json:"withdraws,omitempty"`
	Active        bool      `json:"active"` // for a grant: not withdrawn yet
	At            time.Time `json:"at"`
}

// AuditRecord is one entry of the audit trail: who did what to which target,
// when, and how it ended. Hash covers every field and Prev, the hash of the
// record before, so the trail is a chain (see docs/audit.md).
type AuditRecord struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Role    string    `json:"role"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Outcome string    `json:"outcome"`
	Prev    string    `json:"prev"` // hex
	Hash    string    `json:"hash"` // hex
}

// AuditList answers GET /v1/audit: records in order, oldest first.
// NextAfter is the last seq the hub looked at: ask again with after=NextAfter
// to go on.
type AuditList struct {
	Records   []AuditRecord `json:"records"`
	NextAfter uint64        `json:"nextAfter,omitempty"`
}

// ConsentStatus answers GET /v1/users/{user}/consent: for each scope, the
// grant in force, if any.
type ConsentStatus struct {
	User   string              `json:"user"`
	Scopes map[string]*Consent `json:"scopes"` // scope → active grant, or null
}

// ConsentList answers GET /v1/consents, oldest record first.
type ConsentList struct {
	Consents []Consent `json:"consents"`
}
