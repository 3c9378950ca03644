package e2ee

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"
)

// Envelopes of scheme v1. The body is encrypted once for everyone; each
// recipient device that needs one gets a header, a Double Ratchet message
// from the sender's device to it:
//
//	ad      = version(1) = 2 || mode(1) || len(session id)(2) || session id || len(sender user)(2) ||
//	          sender user || len(sender device)(2) || sender device || len(client msg id)(2) || client msg id
//	pairwise body = version(1) || mode(1) = 0x01 || nonce(24) ||
//	          XChaCha20-Poly1305(K, nonce, zero(32) || padded message, ad)
//	group body    = version(1) || mode(1) = 0x02 || chain id(4) || iteration(4) || nonce(24) ||
//	          XChaCha20-Poly1305(K, nonce, zero(32) || padded message, ad || chain id || iteration) ||
//	          Ed25519(chain signing key, "bedside/e2ee/v1/group-signature" || ad || body up to here)
//	header  = version(1) || type(1) || session tag(8) || [PQXDH header, when type is 0x02] ||
//	          ratchet header(40) || ChaCha20-Poly1305(message key, kind(1) || payload,
//	          TH || ad || SHA-256(body) || header up to the ratchet header || ratchet header)
//
// In pairwise mode K is random and every header carries it (kind 0x01).
// In group mode K = HKDF-SHA256(IKM = the chain's message key, info =
// "bedside/e2ee/v1/content-key"), and a header (kind 0x02) carries the
// sender key distribution only to devices that do not hold the chain yet.
// The zero prefix commits the body to K, so no sender can show different
// recipients different messages.
const (
	modePairwise byte = 0x01
	modeGroup    byte = 0x02

	headerMessage byte = 0x01
	headerPreKey  byte = 0x02

	kindContentKey   byte = 0x01
	kindDistribution byte = 0x02

	tagLen8      = 8
	groupPrefix  = 2 + 4 + 4
	minHeaderLen = 2 + tagLen8 + ratchetHeaderLen + 1 + keySize + tagLen
	maxHeaderLen = 2 + tagLen8 + pqxdhLen + ratchetHeaderLen + 1 + distributionLen + tagLen
)

// ad1 is the associated data of a v1 envelope.
func (c Context) ad1(mode byte) []byte {
	ad := []byte{Version1, mode}
	ad = appendField(ad, c.SessionID)
	ad = appendField(ad, c.SenderUser)
	ad = appendField(ad, c.SenderDevice)
	return appendField(ad, c.ClientMsgID)
}

// check validates c for a device sending or receiving under v1.
func (c Context) check1() error {
	if err := c.validate(); err != nil {
		return err
	}
	return checkID("sender user", c.SenderUser)
}

// Seal encrypts plaintext for every device in to (the members' devices and
// the sender's own other devices) with a pairwise ratchet message each; to
// may be empty, leaving a body only the sender's own archive can show. It
// fails with ErrNeedBundle, naming the device, when a recipient has no
// session and no bundle. On success the state has moved on: save it before
// sending.
func (d *Device) Seal(rand io.Reader, c Context, to []Recipient, plaintext []byte) (Sealed, error) {
	if err := d.checkSeal(c, to, plaintext); err != nil {
		return Sealed{}, err
	}
	ad := c.ad1(modePairwise)
	k := make([]byte, contentLen)
	if err := readRand(rand, k); err != nil {
		return Sealed{}, err
	}
	body, err := sealBody1(rand, k, ad, []byte{Version1, modePairwise}, plaintext)
	if err != nil {
		return Sealed{}, err
	}
	payload := append([]byte{kindContentKey}, k...)
	tx, err := d.headers(rand, to, ad, body, payload)
	if err != nil {
		return Sealed{}, err
	}
	tx.commit(d)
	return Sealed{Body: body, Headers: tx.headers}, nil
}

// SealGroup encrypts plaintext once under this device's sending chain for
// c.SessionID, and hands the chain to each device in to that does not hold
// it yet. When a device that held the chain is not in to any more (a member
// or device left), it starts a new chain first, so that device reads
// nothing new. Headers go only to devices that need the chain, so most
// group messages have none. On success the state has moved on: save it
// before sending.
func (d *Device) SealGroup(rand io.Reader, c Context, to []Recipient, plaintext []byte) (Sealed, error) {
	if err := d.checkSeal(c, to, plaintext); err != nil {
		return Sealed{}, err
	}
	ad := c.ad1(modeGroup)
	chain, err := d.chainFor(rand, c.SessionID, to)
	if err != nil {
		return Sealed{}, err
	}
	var need []Recipient
	for _, r := range to {
		if !chain.Holders[r.Device.ID] {
			need = append(need, r)
		}
	}
	var dist []byte // the chain before this message, for the devices in need
	if len(need) > 0 {
		dist = append([]byte{kindDistribution}, chain.distribution()...)
	}

	it, mk := chain.next()
	prefix := binary.BigEndian.AppendUint32([]byte{Version1, modeGroup}, chain.ID)
	prefix = binary.BigEndian.AppendUint32(prefix, it)
	bodyAD := slices.Concat(ad, prefix[2:])
	body, err := sealBody1(rand, hkdfBytes(mk, nil, labelContent, contentLen), bodyAD, prefix, plaintext)
	if err != nil {
		return Sealed{}, err
	}
	sig := ed25519.Sign(chain.key(), groupSigned(ad, body))
	body = append(body, sig...)

	tx, err := d.headers(rand, need, ad, body, dist)
	if err != nil {
		return Sealed{}, err
	}
	for _, r := range need {
		chain.Holders[r.Device.ID] = true
	}
	tx.commit(d)
	d.st.Own[c.SessionID] = chain
	return Sealed{Body: body, Headers: tx.headers}, nil
}

// ForgetSendingChain drops this device's sending chain for a group
// session, so the next SealGroup starts a new one and hands it to every
// recipient. Call it when the hub refused a group message for good: the
// hand-off it carried never reached anyone.
func (d *Device) ForgetSendingChain(sessionID string) {
	delete(d.st.Own, sessionID)
}

// chainFor returns a copy of the sending chain for session, or a new one
// when there is none, it is spent, or a holder is no longer among to.
func (d *Device) chainFor(rand io.Reader, session string, to []Recipient) (*senderChain, error) {
	old := d.st.Own[session]
	if old != nil && !old.spent(d.now()) {
		keep := make(map[string]bool, len(to))
		for _, r := range to {
			keep[r.Device.ID] = true
		}
		stale := false
		for h := range old.Holders {
			stale = stale || !keep[h]
		}
		if !stale {
			return old.clone(), nil
		}
	}
	return newSenderChain(rand, d.now())
}

func groupSigned(ad, unsigned []byte) []byte {
	m := append([]byte(labelGroupSig), ad...)
	return append(m, unsigned...)
}

// checkSeal validates a Seal's arguments.
func (d *Device) checkSeal(c Context, to []Recipient, plaintext []byte) error {
	if err := c.check1(); err != nil {
		return err
	}
	if c.SenderDevice != d.id.deviceID || c.SenderUser != d.user {
		return fmt.Errorf("%w: context names %q/%q, device is %q/%q",
			ErrSenderMismatch, c.SenderUser, c.SenderDevice, d.user, d.id.deviceID)
	}
	if len(plaintext) > MaxPlaintextLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(plaintext), MaxPlaintextLen)
	}
	seen := make(map[string]bool, len(to))
	for _, r := range to {
		if err := d.validatePeer(r.Device); err != nil {
			return err
		}
		if seen[r.Device.ID] || r.Device.ID == d.id.deviceID {
			return fmt.Errorf("%w: device %q", ErrDuplicateRecipient, r.Device.ID)
		}
		seen[r.Device.ID] = true
		if err := d.pin(r.Device); err != nil {
			return err
		}
	}
	return nil
}

// sealBody1 encrypts a v1 body: prefix || nonce || ciphertext.
func sealBody1(rand io.Reader, k, aeadAD, prefix, plaintext []byte) ([]byte, error) {
	var nonce [nonceLen]byte
	if err := readRand(rand, nonce[:]); err != nil {
		return nil, err
	}
	inner := pad(make([]byte, commitLen, commitLen+paddedLen(len(plaintext))), plaintext)
	body := make([]byte, 0, len(prefix)+nonceLen+len(inner)+tagLen)
	body = append(append(body, prefix...), nonce[:]...)
	return newAEAD(k).Seal(body, nonce[:], inner, aeadAD), nil
}

// sealTx is a Seal's ratchet sessions, committed only if every header was
// made.
type sealTx struct {
	headers  map[string][]byte
	sessions map[string]*ratchet
	devices  map[string]PublicDevice
}

func (tx *sealTx) commit(d *Device) {
	for id, r := range tx.sessions {
		d.commitSession(tx.devices[id], r)
	}
}

// headers makes one header per recipient in to, each carrying payload, on
// session copies.
func (d *Device) headers(rand io.Reader, to []Recipient, ad, body, payload []byte) (*sealTx, error) {
	tx := &sealTx{headers: make(map[string][]byte, len(to)), sessions: map[string]*ratchet{},
		devices: map[string]PublicDevice{}}
	bodyHash := sum256(body)
	for _, r := range to {
		s, err := d.sendingSession(rand, r)
		if err != nil {
			return nil, err
		}
		h, err := s.header(d.now, ad, bodyHash, payload)
		if err != nil {
			return nil, err
		}
		tx.headers[r.Device.ID], tx.sessions[r.Device.ID], tx.devices[r.Device.ID] = h, s, r.Device
	}
	return tx, nil
}

// sendingSession returns a copy of the active session with r, or a new one
// set up by PQXDH from r's bundle.
func (d *Device) sendingSession(rand io.Reader, r Recipient) (*ratchet, error) {
	if !d.NeedsBundle(r.Device.ID) {
		return d.st.Peers[r.Device.ID].Sessions[0].clone(), nil
	}
	if r.Bundle == nil {
		return nil, fmt.Errorf("%w: device %q", ErrNeedBundle, r.Device.ID)
	}
	if !r.Bundle.Device.equal(r.Device) {
		return nil, fmt.Errorf("%w: bundle keys differ from device %q", ErrKeyChanged, r.Device.ID)
	}
	pb, err := verifyBundle(*r.Bundle)
	if err != nil {
		return nil, err
	}
	sk, th, h, err := pqxdhInitiate(rand, d.id, pb)
	if err != nil {
		return nil, err
	}
	return newInitiator(rand, sk, th, pb.spk, h, d.now())
}

// equal reports whether two public devices are the same device and keys.
func (p PublicDevice) equal(q PublicDevice) bool {
	return p.ID == q.ID && string(p.SigningKey) == string(q.SigningKey) &&
		string(p.ExchangeKey) == string(q.ExchangeKey)
}

// header encrypts payload as the session's next message.
func (s *ratchet) header(now func() time.Time, ad, bodyHash, payload []byte) ([]byte, error) {
	h := []byte{Version1, headerMessage}
	if s.Pending != nil {
		h[1] = headerPreKey
	}
	h = append(h, s.tag()...)
	if s.Pending != nil {
		h = s.Pending.append(h)
	}
	rad := headerAD(s.TH, ad, bodyHash, h)
	rh, ct, err := s.encrypt(payload, rad, now())
	if err != nil {
		return nil, err
	}
	h = append(h, rh...)
	return append(h, ct...), nil
}

// headerAD is what a header's ratchet message binds besides the ratchet
// header itself.
func headerAD(th, ad, bodyHash, prefix []byte) []byte {
	return slices.Concat(th, ad, bodyHash, prefix)
}
