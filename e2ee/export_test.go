package e2ee

import (
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"io"
	"testing"
)

// UseDerandomizedKEM makes ML-KEM encapsulation read its 32 bytes of
// randomness from the rand a test passes, so golden vectors repeat. Tests
// that call it must not run in parallel.
func UseDerandomizedKEM(tb testing.TB) {
	old := kemEncapsulate
	kemEncapsulate = func(rand io.Reader, ek *mlkem.EncapsulationKey768) ([]byte, []byte, error) {
		m := make([]byte, 32)
		if err := readRand(rand, m); err != nil {
			return nil, nil, err
		}
		return mlkemtest.Encapsulate768(ek, m)
	}
	tb.Cleanup(func() { kemEncapsulate = old })
}

// PreKeyPrivates returns a device's private prekeys for the golden vectors:
// the current signed X25519 prekey, the ML-KEM last-resort seed, and the
// first unused one-time keys of each kind (nil when there are none).
func PreKeyPrivates(d *Device) (signed, lastKEMSeed, oneTime, oneTimeKEMSeed []byte) {
	p := d.st.PreKeys
	signed, lastKEMSeed = p.Signed[0].Private, p.LastKEM[0].Seed
	if len(p.OneTime) > 0 {
		oneTime = p.OneTime[0].Private
	}
	if len(p.OneTimeKEM) > 0 {
		oneTimeKEMSeed = p.OneTimeKEM[0].Seed
	}
	return signed, lastKEMSeed, oneTime, oneTimeKEMSeed
}
