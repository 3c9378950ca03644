package e2ee

import (
	"crypto/ecdh"
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// MaxIDLen is the longest device, session or client message id accepted, in
// bytes. Ids are bound into associated data and key derivation with a 16-bit
// length prefix, so the limit can grow without a format change.
const MaxIDLen = 255

const (
	keySize = 32 // an X25519 key, an Ed25519 seed or public key

	// identityMagic and identityFormat open a marshaled Identity.
	identityMagic  = "bsid"
	identityFormat = 1
	// identityFixedLen is a marshaled Identity without its device id:
	// magic, format, Ed25519 seed, X25519 private key and id length.
	identityFixedLen = len(identityMagic) + 1 + keySize + keySize + 1

	fingerprintLabel = "bedside/e2ee/fingerprint"
	fingerprintBytes = 16 // 128 bits, shown as 32 hex digits
)

// Identity is one device's private keys: an Ed25519 key that signs (every
// body in v0, the device's prekeys in v1) and an X25519 key (that receives
// content keys in v0, the device's identity key in v1's PQXDH). It never
// leaves the device. Make one with NewIdentity or UnmarshalIdentity; the zero
// Identity holds no keys and is refused with ErrNoIdentity. An Identity is
// immutable and safe for concurrent use.
type Identity struct {
	deviceID string
	signing  ed25519.PrivateKey
	exchange *ecdh.PrivateKey
}

// NewIdentity makes fresh keys for the device deviceID. It reads 64 bytes from
// rand: the Ed25519 seed, then the X25519 private key. A nil rand means
// crypto/rand.Reader, which is what production callers should pass.
func NewIdentity(deviceID string, rand io.Reader) (*Identity, error) {
	if err := checkID("device id", deviceID); err != nil {
		return nil, err
	}

	var seeds [2 * keySize]byte
	if err := readRand(rand, seeds[:]); err != nil {
		return nil, err
	}
	return newIdentity(deviceID, seeds[:keySize], seeds[keySize:])
}

func newIdentity(deviceID string, signingSeed, exchangeKey []byte) (*Identity, error) {
	exchange, err := ecdh.X25519().NewPrivateKey(exchangeKey)
	if err != nil {
		return nil, fmt.Errorf("%w: exchange key: %w", ErrMalformed, err)
	}
	return &Identity{
		deviceID: deviceID,
		signing:  ed25519.NewKeyFromSeed(signingSeed),
		exchange: exchange,
	}, nil
}

// usable reports whether id holds keys: it is neither nil nor zero.
func (id *Identity) usable() bool {
	return id != nil && id.exchange != nil && len(id.signing) == ed25519.PrivateKeySize
}

// DeviceID returns the id of the device the identity belongs to.
func (id *Identity) DeviceID() string {
	if id == nil {
		return ""
	}
	return id.deviceID
}

// Public returns the device's public keys, to publish to the hub and to pin.
// For a nil or zero Identity it returns a PublicDevice that fails Validate.
func (id *Identity) Public() PublicDevice {
	if !id.usable() {
		return PublicDevice{ID: id.DeviceID()}
	}
	pub := id.signing.Public().(ed25519.PublicKey)
	return PublicDevice{
		ID:          id.deviceID,
		SigningKey:  append([]byte(nil), pub...),
		ExchangeKey: id.exchange.PublicKey().Bytes(),
	}
}

// MarshalBinary encodes the identity, private keys included, for the SDK's
// key store:
//
//	"bsid" || format(1) = 1 || Ed25519 seed(32) || X25519 private key(32) ||
//	id length(1) || device id
//
// The output is a secret. The caller must store it readable by its owner only
// (mode 0600, or the platform's key store) and never log or send it.
func (id *Identity) MarshalBinary() ([]byte, error) {
	if !id.usable() {
		return nil, ErrNoIdentity
	}
	b := make([]byte, 0, identityFixedLen+len(id.deviceID))
	b = append(b, identityMagic...)
	b = append(b, identityFormat)
	b = append(b, id.signing.Seed()...)
	b = append(b, id.exchange.Bytes()...)
	b = append(b, byte(len(id.deviceID)))
	b = append(b, id.deviceID...)
	return b, nil
}

// UnmarshalIdentity decodes what MarshalBinary encoded. It fails with
// ErrMalformed on truncated or foreign input and with ErrVersion on a format
// it does not know.
func UnmarshalIdentity(b []byte) (*Identity, error) {
	if len(b) < identityFixedLen || string(b[:len(identityMagic)]) != identityMagic {
		return nil, fmt.Errorf("%w: not a marshaled identity", ErrMalformed)
	}
	b = b[len(identityMagic):]
	if b[0] != identityFormat {
		return nil, fmt.Errorf("%w: identity format %d", ErrVersion, b[0])
	}
	signingSeed, exchangeKey := b[1:1+keySize], b[1+keySize:1+2*keySize]
	b = b[1+2*keySize:]
	if int(b[0]) != len(b)-1 {
		return nil, fmt.Errorf("%w: identity id length %d, have %d bytes", ErrMalformed, b[0], len(b)-1)
	}
	deviceID := string(b[1:])
	if err := checkID("device id", deviceID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return newIdentity(deviceID, signingSeed, exchangeKey)
}

// PublicDevice is the public half of a device's Identity, as the hub
// publishes it and as peers pin it.
type PublicDevice struct {
	ID          string
	SigningKey  []byte // Ed25519 public key, 32 bytes
	ExchangeKey []byte // X25519 public key, 32 bytes
}

// Validate checks the id, the key lengths, and that the exchange key is not
// one of the low-order points (RFC 7748 section 7) that would make every
// shared secret zero.
func (p PublicDevice) Validate() error {
	_, err := p.parse()
	return err
}

// parse validates p and returns its parsed exchange key.
func (p PublicDevice) parse() (*ecdh.PublicKey, error) {
	if err := p.checkShape(); err != nil {
		return nil, err
	}
	pub, err := parseExchangeKey(p.ExchangeKey)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", p.ID, err)
	}
	return pub, nil
}

// checkShape is Validate without the low-order test, which costs a scalar
// multiplication: it checks the id and the key lengths only.
func (p PublicDevice) checkShape() error {
	if err := checkID("device id", p.ID); err != nil {
		return err
	}
	if len(p.SigningKey) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: device %q: signing key is %d bytes, want %d",
			ErrInvalidKey, p.ID, len(p.SigningKey), ed25519.PublicKeySize)
	}
	if len(p.ExchangeKey) != keySize {
		return fmt.Errorf("device %q: %w: exchange key is %d bytes, want %d",
			p.ID, ErrInvalidKey, len(p.ExchangeKey), keySize)
	}
	return nil
}

// lowOrderProbe is a fixed X25519 key used to test public keys. X25519
// clamps every scalar to a multiple of the cofactor 8, so its output is zero
// exactly when the point has order 1, 2, 4 or 8, on the curve or its twist,
// whatever the scalar; crypto/ecdh reports that zero as an error.
var lowOrderProbe = func() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey([]byte(strings.Repeat("\x5a", keySize)))
	if err != nil {
		panic("e2ee: building the low-order probe: " + err.Error())
	}
	return k
}()

// parseExchangeKey parses an X25519 public key and refuses low-order points.
func parseExchangeKey(b []byte) (*ecdh.PublicKey, error) {
	pub, err := parseX25519(b)
	if err != nil {
		return nil, err
	}
	if _, err := lowOrderProbe.ECDH(pub); err != nil {
		return nil, fmt.Errorf("%w: exchange key is a low-order point", ErrInvalidKey)
	}
	return pub, nil
}

// parseX25519 parses an X25519 public key without parseExchangeKey's
// low-order test, which costs a scalar multiplication. It is for keys that
// go straight into X25519 with one of this device's private keys: that
// X25519 is the same test, with our clamped key as the probe, and
// crypto/ecdh fails on its zero output.
func parseX25519(b []byte) (*ecdh.PublicKey, error) {
	if len(b) != keySize {
		return nil, fmt.Errorf("%w: exchange key is %d bytes, want %d", ErrInvalidKey, len(b), keySize)
	}
	pub, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: exchange key: %w", ErrInvalidKey, err)
	}
	return pub, nil
}

// Fingerprint returns a short, human-comparable digest of a device's two
// public keys for trust-on-first-use pinning: the first 16 bytes of
//
//	SHA-256("bedside/e2ee/fingerprint" || len(signing key)(2) || signing key ||
//	        len(exchange key)(2) || exchange key)
//
// as 32 lowercase hex digits in groups of four, like "3f2a 9c01 …". The
// device id is not included: it is compared by other means.
func Fingerprint(p PublicDevice) string {
	h := sha256.New()
	h.Write([]byte(fingerprintLabel))
	h.Write(appendField(nil, p.SigningKey))
	h.Write(appendField(nil, p.ExchangeKey))
	digits := hex.EncodeToString(h.Sum(nil)[:fingerprintBytes])

	var sb strings.Builder
	for i := 0; i < len(digits); i += 4 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(digits[i : i+4])
	}
	return sb.String()
}

// checkID checks an id bound into associated data or key derivation.
func checkID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s is %d bytes, want 1 to %d", ErrInvalidID, what, len(id), MaxIDLen)
	}
	return nil
}

// appendField appends b with its length as a 16-bit big-endian prefix. Every
// caller has bounded b well below 64 KiB.
func appendField[T string | []byte](dst []byte, b T) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// readRand fills b from rand, or from crypto/rand.Reader if rand is nil.
func readRand(rand io.Reader, b []byte) error {
	if rand == nil {
		rand = cryptorand.Reader
	}
	if _, err := io.ReadFull(rand, b); err != nil {
		return fmt.Errorf("e2ee: reading randomness: %w", err)
	}
	return nil
}
