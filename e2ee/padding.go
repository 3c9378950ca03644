package e2ee

import (
	"fmt"
	"math/bits"
)

// MaxPlaintextLen is the longest plaintext Seal accepts: 1 MiB. Chat messages
// are far shorter; files are meant to travel by other means.
const MaxPlaintextLen = 1 << 20

// minPadded is the smallest padded plaintext: every message of up to 255
// bytes looks the same.
const minPadded = 256

// Padding hides a message's exact length. The message is followed by the
// byte 0x80 and then by zero bytes up to paddedLen(len(message)):
//
//   - up to 256 bytes in all, the padded length is 256;
//   - beyond, it is rounded up by Padmé (Nikitin et al., "Reducing Metadata
//     Leakage from Encrypted Files and Communication with PURBs", PETS 2019):
//     a length L with E = floor(log2 L) keeps its top floor(log2 E)+1 bits
//     and rounds the rest up. That leaks O(log log L) bits of the length and
//     adds at most 6.25% here (about 3% near MaxPlaintextLen).
//
// Opening checks the padding is exactly this, so a body padded otherwise is
// refused as malformed.

// paddedLen returns the padded length of an n-byte message.
func paddedLen(n int) int {
	l := n + 1 // the 0x80 end marker
	if l <= minPadded {
		return minPadded
	}
	e := bits.Len(uint(l)) - 1 // floor(log2 l), at least 8 here
	s := bits.Len(uint(e))     // floor(log2 e) + 1
	mask := 1<<(e-s) - 1
	return (l + mask) &^ mask
}

// pad appends the padded msg to dst.
func pad(dst, msg []byte) []byte {
	n := paddedLen(len(msg))
	dst = append(dst, msg...)
	dst = append(dst, 0x80)
	return append(dst, make([]byte, n-len(msg)-1)...)
}

// unpad returns the message inside a padded plaintext.
func unpad(p []byte) ([]byte, error) {
	end := len(p) - 1
	for end >= 0 && p[end] == 0 {
		end--
	}
	if end < 0 || p[end] != 0x80 {
		return nil, fmt.Errorf("%w: no padding marker", ErrMalformed)
	}
	if want := paddedLen(end); len(p) != want {
		return nil, fmt.Errorf("%w: %d-byte message padded to %d bytes, want %d",
			ErrMalformed, end, len(p), want)
	}
	return p[:end], nil
}
