// Package storage defines what Bedside keeps and the rules for keeping it.
//
// The hub talks to a Store and never to a database: the embedded bbolt store
// (storage/boltstore) serves a single clinic node, and a cluster store can
// follow behind the same interface. A Store holds only what the server may
// know: public keys, ciphertext envelopes with their routing metadata, read
// cursors and append-only consent records. It never holds plaintext, private
// keys or tokens, and it cannot tell one envelope from another except by the
// metadata the hub gives it.
package storage

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/bedside/bedside/storage/audit"
)

// Errors returned by every Store. Implementations wrap them with %w; callers
// test with errors.Is.
var (
	ErrNotFound        = errors.New("storage: not found")
	ErrConflict        = errors.New("storage: conflicts with what is stored")
	ErrConsentRequired = errors.New("storage: a patient member has no active chat consent")
	ErrBeyondHead      = errors.New("storage: read cursor beyond the session's head")
	ErrSessionClosed   = errors.New("storage: session is closed")
	ErrClosed          = errors.New("storage: store is closed")
	// ErrFull: a session's members, a user's devices or a device's
	// one-time prekeys are as many as allowed already.
	ErrFull = errors.New("storage: as many as allowed already")
)

// User is what the server knows of a user: the id and role from their token.
type User struct {
	ID        string
	Role      string
	CreatedAt time.Time
	// TokensValidFrom revokes the user's tokens issued before it; zero
	// while none were revoked.
	TokensValidFrom time.Time
	// ErasedAt is when the user was first erased (EraseUser); zero while
	// they were not. An erased user's record is a tombstone.
	ErasedAt time.Time
}

// Device is one device of a user with its public keys.
type Device struct {
	User        string
	ID          string
	SigningKey  []byte // Ed25519 public key
	ExchangeKey []byte // X25519 public key
	CreatedAt   time.Time
}

// Member is one member of a session; Role is the user's role when the
// session was created, and decides whether the consent gate applies. A
// member let in by emergency access ("break glass") has Until set: they
// count as a member only before it.
type Member struct {
	User  string
	Role  string
	Until time.Time // zero for a regular member
}

// Emergency reports whether m was let in by emergency access.
func (m Member) Emergency() bool { return !m.Until.IsZero() }

// ActiveAt reports whether m counts as a member at t.
func (m Member) ActiveAt(t time.Time) bool { return m.Until.IsZero() || t.Before(m.Until) }

// Grant is the record of one emergency access grant: who let User in, why,
// from when until when. A session keeps every grant, as evidence, however
// the membership it gave ended.
type Grant struct {
	User   string
	By     string
	Reason string
	Since  time.Time
	Until  time.Time
}

// MaxGrants bounds the emergency grants one session keeps.
const MaxGrants = 64

// Session is a conversation between members. HeadSeq is the seq of its newest
// message, 0 when it has none.
type Session struct {
	ID        string
	Kind      string
	State     string
	Members   []Member
	HeadSeq   uint64
	CreatedAt time.Time
	ClosedAt  time.Time // zero while open
	LegalHold bool      // no deletion while set
	Grants    []Grant   // emergency access grants, oldest first
}

// Message is one entry of a session log. Recipients maps each recipient device
// to its opaque key header; Body is the opaque envelope.
type Message struct {
	SessionID    string
	Seq          uint64
	TS           time.Time
	ClientMsgID  string
	SenderUser   string
	SenderDevice string
	Recipients   map[string][]byte
	Body         []byte
}

// AppendRequest asks to add Message to its session's log. The store assigns
// Seq and TS. RequireConsent names users who must hold an active chat consent
// when the message is written, checked in the same transaction as the write so
// that a withdrawal and a send cannot race past each other.
type AppendRequest struct {
	Message        Message
	RequireConsent []string
}

// AppendResult is the outcome of an append. Duplicate is true when the same
// sender device sent the same client message id with the same content before;
// Seq and TS are then the original ones and nothing new was stored.
type AppendResult struct {
	Seq       uint64
	TS        time.Time
	Duplicate bool
}

// Consent is one append-only consent record: a grant, or a withdrawal naming
// the grant it ends in Withdraws.
type Consent struct {
	ID            string
	User          string
	Kind          string // "grant" or "withdraw"
	Scope         string
	PolicyVersion string
	PolicyHash    string // hex SHA-256 of the policy text shown, if given
	Method        string // "in-app", or "staff" when a staff member recorded it
	Actor         string // who recorded it: the patient, or the staff member
	Device        string // the device it was given on, if known
	Withdraws     string
	At            time.Time
}

// Store keeps Bedside's data. All methods are safe for concurrent use. Every
// write has reached stable storage when the method returns without error.
type Store interface {
	// PutUser records a user not known yet. A user keeps the role first
	// recorded: the same role again is a no-op, another gives ErrConflict,
	// decided in one transaction so that racing first requests cannot
	// record two roles.
	PutUser(ctx context.Context, u User) error
	// RevokeTokens makes every token of user issued before at invalid.
	// ErrNotFound for a user never seen.
	RevokeTokens(ctx context.Context, user string, at time.Time) error
	// GetUser returns ErrNotFound for a user never seen.
	GetUser(ctx context.Context, id string) (User, error)

	// PutDevice registers a device. Device ids are unique across users, so
	// that a recipient map keyed by device id names one device. Registering
	// the same keys again is a no-op; other keys under an existing device
	// id, or an id another user holds, give ErrConflict. A user who holds
	// max devices already gets ErrFull.
	PutDevice(ctx context.Context, d Device, max int) error
	// DeleteDevice retires a device of user: it is no longer listed, its
	// prekeys are deleted with it, and its id is never registered again, by
	// anyone. ErrNotFound unless user owns it.
	DeleteDevice(ctx context.Context, user, id string) error
	// GetDevice returns ErrNotFound unless user owns a device with that id.
	GetDevice(ctx context.Context, user, id string) (Device, error)
	// ListDevices returns a user's devices ordered by id; none is not an error.
	ListDevices(ctx context.Context, user string) ([]Device, error)

	// PutPreKeys adds to a device's prekeys (keydir.go), all or nothing,
	// and returns its counts as they then stand. The device must be a
	// registered device of user (else ErrNotFound). A one-time key whose id
	// is stored already for the device, or given twice, in its kind gives
	// ErrConflict; a kind that would then hold more than max one-time keys
	// gives ErrFull. The store checks no key or signature.
	PutPreKeys(ctx context.Context, user, device string, up PreKeyUpload, max int) (PreKeyCounts, error)
	// PreKeyCounts tells where the prekeys of a registered device of user
	// stand; ErrNotFound for any other device.
	PreKeyCounts(ctx context.Context, user, device string) (PreKeyCounts, error)
	// ClaimBundles claims a bundle of each of user's devices named in
	// devices (nil: all of them) that has both signed prekeys. Each bundle
	// takes the device's one-time keys of lowest id, one of each kind if
	// any is left, and deletes them, in one transaction with the others:
	// however many claims run at once, each one-time key is handed out
	// once. Devices that cannot be claimed are listed in Claim.Missing.
	ClaimBundles(ctx context.Context, user string, devices []string) (Claim, error)
	// PutDeviceList stores l as l.User's signed device list and returns the
	// list it replaced (the zero value if none), also when it refuses l.
	// l.Version must be the stored list's plus one (1 if none: a jump
	// could reach the top and lock the list for good), and every
	// entry must name a registered device of l.User with the keys that
	// device holds; else ErrConflict. Devices must be non-empty with
	// unique ids. UpdatedAt is set by the store when zero.
	PutDeviceList(ctx context.Context, l DeviceList) (prev DeviceList, err error)
	// GetDeviceList returns user's signed device list, or ErrNotFound.
	GetDeviceList(ctx context.Context, user string) (DeviceList, error)

	// CreateSession stores a new session; an existing id gives ErrConflict.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session with its current HeadSeq, or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// ListSessions returns the sessions user is a member of, newest first.
	ListSessions(ctx context.Context, user string) ([]Session, error)
	// CloseSession makes a session read-only (State "closed", ClosedAt
	// at): appends are refused from then on; its retention clock starts.
	// closed is false when it was closed already (nothing changes).
	// ErrNotFound for an unknown session.
	CloseSession(ctx context.Context, id string, at time.Time) (s Session, closed bool, err error)
	// AddMember adds m to a session that has fewer than max members and
	// returns the session as it now stands; added is false when m.User was
	// a member already (nothing changes). A member let in by emergency
	// access becomes a regular one (added is then true). Members whose
	// emergency access ended by at are dropped first and do not count.
	// Errors: ErrNotFound, ErrFull, ErrSessionClosed.
	AddMember(ctx context.Context, sessionID string, m Member, max int, at time.Time) (s Session, added bool, err error)
	// GrantEmergency records g and lets g.User, of role, into a session,
	// open or closed, until g.Until; a member whose emergency access has
	// not ended has it extended (or shortened) to g.Until. Members whose
	// emergency access ended by g.Since are dropped first and do not
	// count. Errors: ErrNotFound, ErrFull (max members, or MaxGrants
	// grants), ErrConflict when g.User is a regular member.
	GrantEmergency(ctx context.Context, sessionID string, g Grant, role string, max int) (Session, error)

	// Append writes a message durably, or returns the original for a retry.
	// Errors: ErrNotFound (no session), ErrSessionClosed, ErrConsentRequired,
	// ErrConflict (same sender device and client message id, other content).
	// Concurrent appends share commits. A new message is counted in the
	// session's usage facts in the same transaction.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// Messages returns up to limit messages with seq > after, in seq order.
	Messages(ctx context.Context, sessionID string, after uint64, limit int) ([]Message, error)

	// MoveReadCursor moves user's read cursor in a session forward to seq and
	// returns where it now stands and whether it moved; a lower seq changes
	// nothing. A seq past the head gives ErrBeyondHead.
	MoveReadCursor(ctx context.Context, sessionID, user string, seq uint64) (uint64, bool, error)
	// ReadCursors returns each member's read cursor; members who never read
	// are absent (their cursor is 0).
	ReadCursors(ctx context.Context, sessionID string) (map[string]uint64, error)

	// AddConsent appends a consent record. A withdrawal must name an active
	// grant of the same user (else ErrNotFound, or ErrConflict if that grant
	// was already withdrawn) and takes its scope from it.
	AddConsent(ctx context.Context, c Consent) (Consent, error)
	// Consents returns a user's consent records, oldest first.
	Consents(ctx context.Context, user string) ([]Consent, error)
	// ActiveConsent reports whether user holds a grant in scope that has not
	// been withdrawn.
	ActiveConsent(ctx context.Context, user, scope string) (bool, error)

	// AppendAudit adds records to the end of the audit trail in one
	// transaction, linking each to the one before (audit.Record.Link): the
	// store sets Seq, Prev and Hash.
	AppendAudit(ctx context.Context, recs []audit.Record) error
	// AuditRecords returns up to limit audit records with Seq > after, in
	// order, exactly as stored.
	AuditRecords(ctx context.Context, after uint64, limit int) ([]audit.Record, error)
	// AuditFor returns the newest limit audit records whose Target is
	// target, newest first.
	AuditFor(ctx context.Context, target string, limit int) ([]audit.Record, error)

	// AppendCheckpoint stores a signed checkpoint of the audit trail; the
	// store does not check the signature. cp.Seq must name a stored record
	// (else ErrNotFound) whose hash is cp.Hash, and come after every stored
	// checkpoint (else ErrConflict).
	AppendCheckpoint(ctx context.Context, cp audit.Checkpoint) error
	// Checkpoints returns up to limit checkpoints with Seq > after, in order.
	Checkpoints(ctx context.Context, after uint64, limit int) ([]audit.Checkpoint, error)
	// AuditState tells where the audit trail stands.
	AuditState(ctx context.Context) (AuditState, error)
	// DeleteAuditBefore deletes the oldest audit records, for retention:
	// those at the start of the trail whose Time is before before, and only
	// up to a checkpoint, so that the rest still verifies against every
	// checkpoint kept elsewhere. The cut is the newest stored checkpoint
	// whose record is older than before; later records stay, however old,
	// until a later checkpoint covers them. That checkpoint becomes the
	// anchor (AuditState.Anchor) the trail goes on from. Deletion stops
	// early at a record not older than before. Transactions delete at most
	// batch records (0: 1000) each, with their index entries and the
	// checkpoints before them, so that an interrupted run leaves a trail
	// that verifies and the next run goes on. It returns the records it
	// deleted. The caller audits the deletion, as a sweep is audited.
	DeleteAuditBefore(ctx context.Context, before time.Time, batch int) (int, error)

	// Sweep deletes what the retention policy says has expired, in batches
	// of short transactions so that sends are not stalled; an interrupted
	// sweep leaves every batch done so far done, and the next one goes on.
	// Sessions under legal hold are skipped whole.
	Sweep(ctx context.Context, p SweepPolicy) (SweepStats, error)
	// SetLegalHold suspends (or resumes) every deletion of a session.
	// ErrNotFound for an unknown session.
	SetLegalHold(ctx context.Context, session string, on bool) error

	// EraseUser erases a user on request (GDPR Art. 17). It deletes their
	// devices with the public keys and prekeys, their signed device list,
	// the envelopes they sent with their
	// retry records, the key headers sealed for any of their devices (in
	// others' envelopes, which stay), their read cursors and their
	// membership of sessions. It keeps, minimised: a tombstone of the user
	// record (id, role, CreatedAt, TokensValidFrom, and ErasedAt set), the
	// ids of their devices (retired, as DeleteDevice leaves them), and
	// their consent records without device ids, after appending a
	// withdrawal (Method "staff", Actor o.Actor) of every grant still in
	// force. Sessions under legal hold are left whole, the user's
	// membership included. The audit trail is not touched.
	//
	// It works in short transactions like Sweep. The withdrawals are
	// written first, with the tombstone, so that no append requiring the
	// user's consent lands once it has started. An erasure stopped at any
	// point (an ended context, a killed process) leaves what it did done,
	// and running it again finishes the job, counting 0 for what is
	// already gone. ErrNotFound for a user never seen.
	EraseUser(ctx context.Context, user string, o EraseOptions) (EraseReport, error)
	// SetAttributes replaces a user's report attributes; the zero value
	// clears them. The user need not be known yet.
	SetAttributes(ctx context.Context, user string, a Attributes) error
	// Attributes returns a user's report attributes, the zero value when
	// none were set.
	Attributes(ctx context.Context, user string) (Attributes, error)
	// RecordCall counts a call of a session in the usage facts of the week
	// of at. ErrNotFound for an unknown session.
	RecordCall(ctx context.Context, session string, at time.Time) error
	// Usage calls fn with every session week of the usage facts (see
	// usage.go), in no promised order, until fn returns an error. Create
	// and Append keep the facts; Sweep leaves them.
	Usage(ctx context.Context, fn func(SessionWeek) error) error

	// Backup writes a consistent copy of everything the store holds to w
	// while it keeps serving, and returns the bytes written.
	Backup(ctx context.Context, w io.Writer) (int64, error)

	// Ping reports whether the store can serve; the hub's readiness uses it.
	Ping(ctx context.Context) error
	// Close stops accepting work, finishes writes under way and releases
	// the store. It may be called more than once.
	Close() error
}

// SweepPolicy says what a sweep deletes, as of Now: the envelopes (with
// their retry records and the session's read cursors) of sessions closed at
// least AfterClose ago, and envelopes older than MaxAge in any session (0:
// none). Kinds overrides both for sessions of a kind. Consent records that
// have not been in effect for ConsentsAfter (a grant withdrawn that long ago,
// with its withdrawal) go too; 0 keeps them. Audit records older than
// AuditAfter go as DeleteAuditBefore deletes them; 0 keeps them. Usage
// facts of weeks that ended UsageAfter ago go; 0 keeps them. DryRun counts
// without deleting.
// Batch bounds the keys one transaction deletes (0: 1000). Progress, if set,
// is called from the sweeping goroutine after each session with the counts
// so far, the sessions done and the sessions in all.
type SweepPolicy struct {
	Now           time.Time
	AfterClose    time.Duration
	MaxAge        time.Duration
	Kinds         map[string]KindRetention
	ConsentsAfter time.Duration
	AuditAfter    time.Duration
	UsageAfter    time.Duration
	Batch         int
	DryRun        bool
	Progress      func(st SweepStats, done, total int)
	// Unpaced deletes batch after batch without resting between them, for
	// a sweep with nothing else waiting on the store (offline).
	Unpaced bool
}

// KindRetention is the envelope policy for the sessions of one kind.
type KindRetention struct {
	AfterClose time.Duration
	MaxAge     time.Duration
}

// For returns the envelope policy for sessions of kind.
func (p SweepPolicy) For(kind string) KindRetention {
	if k, ok := p.Kinds[kind]; ok {
		return k
	}
	return KindRetention{AfterClose: p.AfterClose, MaxAge: p.MaxAge}
}

// SweepStats counts what a sweep deleted (or would delete), by class.
type SweepStats struct {
	Messages int // envelopes
	Retries  int // retry (idempotency) records
	Cursors  int // read cursors
	Consents int // consent records no longer in effect for the compliance period
	Audit    int // audit records past the compliance period
	Usage    int // session weeks of usage facts past their period
	Expired  int // closed sessions whose envelopes all went
	Held     int // sessions skipped for legal hold
}

// EraseOptions say how EraseUser runs. At is the time of the erasure (zero:
// now), Actor the staff member who asked for it (required). DryRun counts
// without changing anything. Batch bounds the log entries one transaction
// reads (0: the store's default).
type EraseOptions struct {
	At     time.Time
	Actor  string
	DryRun bool
	Batch  int
}

// EraseReport counts what EraseUser deleted (or, in a dry run, would
// delete), what it recorded and what it kept.
type EraseReport struct {
	// ErasedAt is when the user was first erased; zero in a dry run for a
	// user not erased yet.
	ErasedAt time.Time

	// Deleted.
	Messages       int // envelopes the user sent
	Retries        int // their retry (idempotency) records
	Headers        int // key headers for their devices, taken out of others' envelopes
	Cursors        int // their read cursors
	Memberships    int // sessions they were taken out of
	Devices        int // devices, with their public keys
	PreKeys        int // prekeys of their devices, signed and one-time
	DeviceList     int // their signed device list (0 or 1)
	ConsentDevices int // device ids taken out of their consent records
	Attributes     int // their report attributes (0 or 1)
	UsageWeeks     int // session weeks of usage facts they were taken out of

	// Recorded.
	Withdrawn int // grants in force, withdrawn by the erasure

	// Kept.
	Others   int           // envelopes others sent in the sessions the user left
	Held     []HeldSession // sessions under legal hold, left whole, in id order
	Consents int           // consent records, withdrawals included
	Retired  int           // ids of the user's devices, retired
}

// HeldSession is a session under legal hold that an erasure left whole,
// with the number of envelopes the erased user sent in it.
type HeldSession struct {
	ID       string
	Messages int
}

// AuditState is where the audit trail stands.
type AuditState struct {
	// Head is the seq of the newest record and HeadHash its hash; once
	// DeleteAuditBefore deleted every record, the anchor's. Zero for a
	// trail never written.
	Head     uint64
	HeadHash audit.Hash
	// Checkpointed is the seq of the newest checkpoint, 0 for none.
	Checkpointed uint64
	// Anchor is the checkpoint up to which DeleteAuditBefore deleted the
	// oldest records; its Seq is 0 while none was deleted.
	Anchor audit.Checkpoint
}

// Consent record kinds and the scope the chat gate checks.
const (
	SessionOpen     = "open"
	SessionClosed   = "closed"
	ConsentGrant    = "grant"
	ConsentWithdraw = "withdraw"
	ScopeChat       = "chat"

	// MethodStaff is the Method of a consent record a staff member
	// recorded, such as the withdrawals of an erasure.
	MethodStaff = "staff"
)
