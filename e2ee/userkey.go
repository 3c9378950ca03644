package e2ee

import (
	"cmp"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

// UserKey is a user's long-term Ed25519 key. It signs the list of the
// user's devices, so the key directory cannot add a device unseen, and the
// safety number two users compare is made from their two user keys. It
// lives on the user's devices only. An UserKey is immutable.
type UserKey struct {
	user string
	key  ed25519.PrivateKey
}

const (
	userKeyMagic  = "bsuk"
	userKeyFormat = 1
)

// NewUserKey makes a fresh key for user, reading 32 bytes from rand (nil
// means crypto/rand.Reader).
func NewUserKey(user string, rand io.Reader) (*UserKey, error) {
	if err := checkID("user id", user); err != nil {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if err := readRand(rand, seed); err != nil {
		return nil, err
	}
	return &UserKey{user: user, key: ed25519.NewKeyFromSeed(seed)}, nil
}

// User returns the user the key belongs to.
func (u *UserKey) User() string { return u.user }

// Public returns the public key, 32 bytes.
func (u *UserKey) Public() []byte { return slices.Clone(u.key.Public().(ed25519.PublicKey)) }

// MarshalBinary encodes the key, a secret:
//
//	"bsuk" || format(1) = 1 || Ed25519 seed(32) || len(user)(2) || user
func (u *UserKey) MarshalBinary() ([]byte, error) {
	b := append([]byte(userKeyMagic), userKeyFormat)
	b = append(b, u.key.Seed()...)
	return appendField(b, u.user), nil
}

// UnmarshalUserKey decodes what MarshalBinary encoded.
func UnmarshalUserKey(b []byte) (*UserKey, error) {
	fixed := len(userKeyMagic) + 1 + ed25519.SeedSize
	if len(b) < fixed || string(b[:len(userKeyMagic)]) != userKeyMagic {
		return nil, fmt.Errorf("%w: not a marshaled user key", ErrMalformed)
	}
	if b[len(userKeyMagic)] != userKeyFormat {
		return nil, fmt.Errorf("%w: user key format %d", ErrVersion, b[len(userKeyMagic)])
	}
	user, rest, err := readField(b[fixed:])
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: user key user id", ErrMalformed)
	}
	if err := checkID("user id", string(user)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &UserKey{user: string(user), key: ed25519.NewKeyFromSeed(b[len(userKeyMagic)+1 : fixed])}, nil
}

// DeviceList is the list of a user's devices that the user key signs. The
// version grows with every change, so an old list cannot be replayed.
type DeviceList struct {
	User    string
	Version uint64
	Devices []PublicDevice
}

// message is the signed encoding of a device list:
//
//	"bedside/e2ee/v1/device-list" || len(user)(2) || user || version(8) || count(2) ||
//	for each device, by id: len(id)(2) || id || type(1) = 0x01 || 0(4) || len(32)(2) || Ed25519 key ||
//	        type(1) = 0x02 || 0(4) || len(32)(2) || X25519 key
func (l DeviceList) message() ([]byte, error) {
	if err := checkID("user id", l.User); err != nil {
		return nil, err
	}
	devs := slices.SortedFunc(slices.Values(l.Devices), func(a, b PublicDevice) int { return cmp.Compare(a.ID, b.ID) })
	m := appendField([]byte(labelDeviceList), l.User)
	m = binary.BigEndian.AppendUint64(m, l.Version)
	m = binary.BigEndian.AppendUint16(m, uint16(len(devs)))
	for i, d := range devs {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if i > 0 && devs[i-1].ID == d.ID || len(devs) > 0xffff {
			return nil, fmt.Errorf("%w: device %q", ErrDuplicateRecipient, d.ID)
		}
		m = appendField(m, d.ID)
		m = appendKey(m, keyIdentityEd, 0, d.SigningKey)
		m = appendKey(m, keyIdentityX, 0, d.ExchangeKey)
	}
	return m, nil
}

// SignDeviceList signs l, which must be the key's own user's list.
func (u *UserKey) SignDeviceList(l DeviceList) ([]byte, error) {
	if l.User != u.user {
		return nil, fmt.Errorf("%w: list of %q signed by %q's key", ErrSenderMismatch, l.User, u.user)
	}
	m, err := l.message()
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(u.key, m), nil
}

// VerifyDeviceList checks sig over l with the user's public key.
func VerifyDeviceList(userKey []byte, l DeviceList, sig []byte) error {
	if len(userKey) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: user key or signature length", ErrInvalidKey)
	}
	m, err := l.message()
	if err != nil {
		return err
	}
	if !ed25519.Verify(userKey, m, sig) {
		return fmt.Errorf("%w: device list of %q", ErrSignature, l.User)
	}
	return nil
}

// Safety numbers let two users check, side by side or over the phone, that
// they hold each other's real user keys. Each user's half is
//
//	h0 = SHA-512("bedside/e2ee/v1/safety-number" || 0x0001 || len(key)(2) || key || len(user)(2) || user)
//	h(i+1) = SHA-512(h(i) || key), 5200 times
//
// whose first 30 bytes, as six 5-byte big-endian numbers each taken modulo
// 100000, give 30 digits. The safety number is the two halves, the smaller
// first, in groups of five: 60 digits, the same on both phones. The
// iterations make each guess in a search for another key with the same
// half 5200 times dearer.
const (
	safetyIterations = 5200
	safetyQRVersion  = 1
)

func safetyHalf(user string, key []byte) []byte {
	h := sha512.New()
	h.Write([]byte(labelSafety))
	h.Write([]byte{0x00, 0x01})
	h.Write(appendField(nil, key))
	h.Write(appendField(nil, user))
	sum := h.Sum(nil)
	for range safetyIterations {
		h.Reset()
		h.Write(sum)
		h.Write(key)
		sum = h.Sum(sum[:0])
	}
	return sum[:30]
}

func halfDigits(half []byte) string {
	var sb strings.Builder
	for i := 0; i < 30; i += 5 {
		var v uint64
		for _, b := range half[i : i+5] {
			v = v<<8 | uint64(b)
		}
		fmt.Fprintf(&sb, "%05d", v%100000)
	}
	return sb.String()
}

// SafetyNumber returns the 60-digit safety number of two users' public user
// keys, in twelve groups of five, the same whichever user asks.
func SafetyNumber(userA string, keyA []byte, userB string, keyB []byte) (string, error) {
	if err := checkSafetyInputs(userA, keyA, userB, keyB); err != nil {
		return "", err
	}
	a, b := halfDigits(safetyHalf(userA, keyA)), halfDigits(safetyHalf(userB, keyB))
	if b < a {
		a, b = b, a
	}
	all := a + b
	groups := make([]string, 0, 12)
	for i := 0; i < len(all); i += 5 {
		groups = append(groups, all[i:i+5])
	}
	return strings.Join(groups, " "), nil
}

func checkSafetyInputs(userA string, keyA []byte, userB string, keyB []byte) error {
	for _, u := range []string{userA, userB} {
		if err := checkID("user id", u); err != nil {
			return err
		}
	}
	if len(keyA) != ed25519.PublicKeySize || len(keyB) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: user key length", ErrInvalidKey)
	}
	return nil
}

// SafetyQR returns the payload of a QR code for the same check, scanned
// from one phone by the other: version(1) = 1 || the two 30-byte halves,
// in the order their digits take in the safety number (61 bytes).
func SafetyQR(userA string, keyA []byte, userB string, keyB []byte) ([]byte, error) {
	if err := checkSafetyInputs(userA, keyA, userB, keyB); err != nil {
		return nil, err
	}
	a, b := safetyHalf(userA, keyA), safetyHalf(userB, keyB)
	if halfDigits(b) < halfDigits(a) {
		a, b = b, a // the order of the digits on screen
	}
	return slices.Concat([]byte{safetyQRVersion}, a, b), nil
}

// VerifySafetyQR reports whether a scanned payload matches the two keys as
// this phone holds them.
func VerifySafetyQR(scanned []byte, userA string, keyA []byte, userB string, keyB []byte) (bool, error) {
	want, err := SafetyQR(userA, keyA, userB, keyB)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(scanned, want) == 1, nil
}
