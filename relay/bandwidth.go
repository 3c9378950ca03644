package relay

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// MinBurst is the smallest Config.Burst allowed: one relayed datagram of the
// largest size pion relays (its 1600-byte MTU), or no datagram could pass.
const MinBurst = 1600

// epoch is the origin of the limiter's clock, read through the monotonic clock.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// bucket is a token bucket in its "generic cell rate" form: tat is the time,
// in nanoseconds since epoch, at which every byte let through so far would
// have been sent at the steady rate. A packet passes while that time stays
// within the burst tolerance of now. One atomic word, no lock.
type bucket struct {
	tat atomic.Int64
}

// rate is a bucket's steady rate and burst tolerance, shared by all buckets.
type rate struct {
	bytesPerSec int64
	tolerance   int64 // ns: the burst, in time at the steady rate
}

func newRate(bytesPerSec, burst int64) rate {
	tol := float64(burst) / float64(bytesPerSec) * float64(time.Second)
	return rate{bytesPerSec: bytesPerSec, tolerance: int64(min(tol, math.MaxInt64/4))}
}

// cost returns the time n bytes take at the steady rate.
func (r rate) cost(n int) int64 {
	return int64(n) * int64(time.Second) / r.bytesPerSec
}

// take lets n bytes through at time now when the bucket holds enough, and
// reports whether it did.
func (b *bucket) take(r rate, now int64, n int) bool {
	cost := r.cost(n)
	for {
		old := b.tat.Load()
		next := max(old, now) + cost
		if next-now > r.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(old, next) {
			return true
		}
	}
}

// reserve lets n bytes through unconditionally and returns how long the
// caller must wait before sending them to stay within the rate.
func (b *bucket) reserve(r rate, now int64, n int) time.Duration {
	cost := r.cost(n)
	for {
		old := b.tat.Load()
		next := max(old, now) + cost
		if b.tat.CompareAndSwap(old, next) {
			return time.Duration(max(next-now-r.tolerance, 0))
		}
	}
}

// userBuckets are one user's two buckets: up counts bytes sent to peers,
// down bytes received from them.
type userBuckets struct {
	refs     int // relay sockets, listeners and connections of the user; guarded by limiter.mu
	up, down bucket
}

// limiter holds the buckets of the users with at least one relay socket. A
// user's buckets are shared by all their allocations and dropped with the
// last one.
type limiter struct {
	rate    rate
	limited bool

	mu    sync.Mutex
	users map[string]*userBuckets
}

func newLimiter(bytesPerSec, burst int64) *limiter {
	l := &limiter{users: map[string]*userBuckets{}}
	if bytesPerSec > 0 {
		l.rate, l.limited = newRate(bytesPerSec, burst), true
	}
	return l
}

// acquire returns user's buckets, made on first use, or nil without limits.
// Each acquire is paired with one release.
func (l *limiter) acquire(user string) *userBuckets {
	if !l.limited {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[user]
	if u == nil {
		u = &userBuckets{}
		l.users[user] = u
	}
	u.refs++
	return u
}

func (l *limiter) release(user string, u *userBuckets) {
	if u == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if u.refs--; u.refs <= 0 {
		delete(l.users, user)
	}
}

// len returns the number of users with buckets.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}

// sendUp and sendDown report whether n bytes may be relayed now; a nil
// *userBuckets is unlimited.
func (l *limiter) sendUp(u *userBuckets, n int) bool {
	return u == nil || u.up.take(l.rate, monoNow(), n)
}

func (l *limiter) sendDown(u *userBuckets, n int) bool {
	return u == nil || u.down.take(l.rate, monoNow(), n)
}

// wait blocks until n more bytes fit the rate of b, or ctx ends.
func (l *limiter) wait(ctx context.Context, b *bucket, n int) error {
	d := b.reserve(l.rate, monoNow(), n)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
