package hub

import (
	"sync"
	"time"
)

// Each user may claim prekey bundles claimBurst times at once and then one
// more every claimRefill: enough for a clinician opening many sessions,
// not for draining a patient's one-time keys in a loop (which leaves honest
// senders with the last-resort keys and keeps the patient's device making
// new ones).
const (
	claimBurst  = 100
	claimRefill = time.Second
)

// claimBudget is a token bucket per claiming user.
type claimBudget struct {
	mu      sync.Mutex
	buckets map[string]claimBucket
}

type claimBucket struct {
	tokens float64
	at     time.Time
}

// allow takes one claim from user's bucket, or reports that it is empty.
func (b *claimBudget) allow(user string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets == nil {
		b.buckets = map[string]claimBucket{}
	}
	k, ok := b.buckets[user]
	if !ok {
		k = claimBucket{tokens: claimBurst, at: now}
	}
	k.tokens = min(claimBurst, k.tokens+now.Sub(k.at).Seconds()/claimRefill.Seconds())
	k.at = now
	if k.tokens < 1 {
		b.buckets[user] = k
		return false
	}
	k.tokens--
	b.buckets[user] = k
	if len(b.buckets) > 10000 {
		b.forgetFull(now)
	}
	return true
}

// forgetFull drops the buckets that have filled up again: they hold
// nothing a fresh bucket would not.
func (b *claimBudget) forgetFull(now time.Time) {
	for u, k := range b.buckets {
		if k.tokens+now.Sub(k.at).Seconds()/claimRefill.Seconds() >= claimBurst {
			delete(b.buckets, u)
		}
	}
}
