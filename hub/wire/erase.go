package wire

import "time"

// EraseRequest is the optional body of POST /v1/users/{user}/erase.
type EraseRequest struct {
	// DryRun counts what the erasure would delete and keep, changing nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// EraseReport answers POST /v1/users/{user}/erase: what was deleted (in a
// dry run: would be), by class, and what was kept, each with the reason.
// Counts are of this run: an erasure run again reports 0 for what an
// earlier run deleted.
type EraseReport struct {
	User   string `json:"user"`
	DryRun bool   `json:"dryRun"`
	// ErasedAt is when the user was first erased; absent in a dry run for a
	// user not erased yet.
	ErasedAt *time.Time   `json:"erasedAt,omitempty"`
	Deleted  ErasedCounts `json:"deleted"`
	// WithdrawnGrants counts the consents in force that the erasure
	// withdrew, recorded as withdrawals by the admin (method staff).
	WithdrawnGrants int    `json:"withdrawnGrants"`
	Kept            []Kept `json:"kept"`
}

// ErasedCounts counts what an erasure deleted, by class.
type ErasedCounts struct {
	Messages       int `json:"messages"`       // envelopes the user sent
	Retries        int `json:"retries"`        // their retry (idempotency) records
	Headers        int `json:"headers"`        // key headers for their devices, in others' envelopes
	ReadCursors    int `json:"readCursors"`    // their read cursors
	Memberships    int `json:"memberships"`    // sessions they were taken out of
	Devices        int `json:"devices"`        // devices with their public keys
	ConsentDevices int `json:"consentDevices"` // device ids taken out of consent records
	Attributes     int `json:"attributes"`     // their report attributes
	UsageWeeks     int `json:"usageWeeks"`     // session weeks of report facts they were taken out of
	PreKeys        int `json:"preKeys"`        // prekeys of their devices, signed and one-time
	DeviceList     int `json:"deviceList"`     // their signed device list (0 or 1)
}

// Kept is one class of records an erasure kept, and why.
type Kept struct {
	// What: "session" (a session under legal hold, left whole),
	// "othersMessages", "consents", "deviceIds", "account" or "audit".
	What    string `json:"what"`
	Session string `json:"session,omitempty"`
	// Count of records kept; for a session, of the user's envelopes in it.
	// Absent where not counted (the audit trail).
	Count  *int   `json:"count,omitempty"`
	Reason string `json:"reason"`
}
