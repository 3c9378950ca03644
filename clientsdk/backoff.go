package clientsdk

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with jitter: the n-th wait (from 0) is
// drawn uniformly from [d/2, d] where d = min(Initial·2ⁿ, Max). The jitter
// keeps many clients that lost the hub at once from returning at once; the
// lower bound keeps a retry from following its failure immediately.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

func (b Backoff) validate(name string) error {
	if b.Initial < 0 || b.Max < 0 || (b.Max > 0 && b.Initial > b.Max) {
		return fmt.Errorf("%w: %s backoff needs 0 <= Initial <= Max", ErrConfig, name)
	}
	return nil
}

func (b Backoff) orDefault(def Backoff) Backoff {
	if b.Initial == 0 {
		b.Initial = def.Initial
	}
	if b.Max == 0 {
		b.Max = max(def.Max, b.Initial)
	}
	b.Initial = min(b.Initial, b.Max)
	return b
}

// Delay returns the wait before retry number attempt (0 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 1 {
		return max(d, 0)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
