package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"
)

// Body lengths of v1, without and with the largest plaintext.
var (
	minPairBody  = 2 + nonceLen + commitLen + minPadded + tagLen
	maxPairBody  = 2 + nonceLen + commitLen + paddedLen(MaxPlaintextLen) + tagLen
	minGroupBody = minPairBody + 8 + sigLen
	maxGroupBody = maxPairBody + 8 + sigLen
)

// Open checks and decrypts a v1 message sent by the device sender: header
// is this device's own header (nil if the message carried none for it) and
// body the shared body. sender's keys are the ones the caller verified
// against the sender user's signed device list; they must match the keys
// pinned at first contact.
//
// Open commits the state only once the message has authenticated: a
// tampered, replayed or truncated message fails (ErrDecrypt, ErrSignature,
// ErrReplay, ErrMalformed) and changes nothing. rand is used for the DH
// ratchet step a new ratchet key starts; nil means crypto/rand.Reader.
func (d *Device) Open(rand io.Reader, c Context, sender PublicDevice, header, body []byte) ([]byte, error) {
	if err := c.check1(); err != nil {
		return nil, err
	}
	if sender.ID != c.SenderDevice {
		return nil, fmt.Errorf("%w: context names %q, sender key is %q", ErrSenderMismatch, c.SenderDevice, sender.ID)
	}
	if err := d.validatePeer(sender); err != nil {
		return nil, err
	}
	if err := d.pin(sender); err != nil {
		return nil, err
	}
	if len(body) < 2 {
		return nil, fmt.Errorf("%w: body is %d bytes", ErrMalformed, len(body))
	}
	if body[0] != Version1 {
		return nil, fmt.Errorf("%w: body version %d", ErrVersion, body[0])
	}
	switch body[1] {
	case modePairwise:
		return d.openPairwise(rand, c, sender, header, body)
	case modeGroup:
		return d.openGroup(rand, c, sender, header, body)
	}
	return nil, fmt.Errorf("%w: body mode %d", ErrMalformed, body[1])
}

func (d *Device) openPairwise(rand io.Reader, c Context, sender PublicDevice, header, body []byte) ([]byte, error) {
	if len(body) < minPairBody || len(body) > maxPairBody {
		return nil, fmt.Errorf("%w: body is %d bytes", ErrMalformed, len(body))
	}
	if header == nil {
		return nil, fmt.Errorf("%w: a pairwise message without a header", ErrNoSession)
	}
	ad := c.ad1(modePairwise)
	payload, commit, err := d.openHeader(rand, sender, ad, body, header)
	if err != nil {
		return nil, err
	}
	if len(payload) != 1+contentLen || payload[0] != kindContentKey {
		return nil, fmt.Errorf("%w: header payload", ErrMalformed)
	}
	pt, err := openBody1(payload[1:], ad, body[2:])
	if err != nil {
		return nil, err
	}
	commit()
	d.trimSkipped()
	return pt, nil
}

func (d *Device) openGroup(rand io.Reader, c Context, sender PublicDevice, header, body []byte) ([]byte, error) {
	if len(body) < minGroupBody || len(body) > maxGroupBody {
		return nil, fmt.Errorf("%w: body is %d bytes", ErrMalformed, len(body))
	}
	ad := c.ad1(modeGroup)
	chainID, it := binary.BigEndian.Uint32(body[2:]), binary.BigEndian.Uint32(body[6:])
	key := recvKey(c.SessionID, c.SenderDevice)
	recv, commitHeader, err := d.groupReceiver(rand, sender, ad, body, header, key, chainID)
	if err != nil {
		return nil, err
	}
	unsigned, sig := body[:len(body)-sigLen], body[len(body)-sigLen:]
	if !ed25519.Verify(recv.SignKey, groupSigned(ad, unsigned), sig) {
		return nil, ErrSignature
	}
	next, mk, err := recv.key(it, d.now())
	if err != nil {
		return nil, err
	}
	k := hkdfBytes(mk, nil, labelContent, contentLen)
	pt, err := openBody1(k, slices.Concat(ad, body[2:groupPrefix]), unsigned[groupPrefix:])
	if err != nil {
		return nil, err
	}
	commitHeader()
	d.putReceiver(key, next)
	d.trimSkipped()
	return pt, nil
}

// trimSkipped drops skipped keys of the whole device beyond
// MaxSkippedKeysTotal, from the list whose oldest key is the oldest, then
// the next such list. It runs after a commit, on the committed state.
func (d *Device) trimSkipped() {
	var lists []*[]skippedKey
	total := 0
	for _, p := range d.st.Peers {
		for _, s := range p.Sessions {
			lists, total = append(lists, &s.Skipped), total+len(s.Skipped)
		}
	}
	for _, rs := range d.st.Recv {
		for _, r := range rs {
			lists, total = append(lists, &r.Skipped), total+len(r.Skipped)
		}
	}
	for total > MaxSkippedKeysTotal {
		oldest := -1 // the list whose first (oldest) key is the oldest
		for i, l := range lists {
			if len(*l) > 0 && (oldest < 0 || (*l)[0].At.Before((*lists[oldest])[0].At)) {
				oldest = i
			}
		}
		l := lists[oldest]
		n := min(len(*l), total-MaxSkippedKeysTotal)
		*l = slices.Delete(*l, 0, n)
		total -= n
	}
}

// groupReceiver returns the chain chainID of the sender, from the header's
// distribution when it carries one this device does not hold yet.
func (d *Device) groupReceiver(rand io.Reader, sender PublicDevice, ad, body, header []byte,
	key string, chainID uint32) (*senderReceiver, func(), error) {
	i := slices.IndexFunc(d.st.Recv[key], func(r *senderReceiver) bool { return r.ID == chainID })
	if header == nil {
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: sender key %d", ErrNoSession, chainID)
		}
		return d.st.Recv[key][i], func() {}, nil
	}
	payload, commit, err := d.openHeader(rand, sender, ad, body, header)
	if err != nil {
		return nil, nil, err
	}
	if len(payload) < 1 || payload[0] != kindDistribution {
		return nil, nil, fmt.Errorf("%w: header payload", ErrMalformed)
	}
	recv, err := parseDistribution(payload[1:])
	if err != nil {
		return nil, nil, err
	}
	if recv.ID != chainID {
		return nil, nil, fmt.Errorf("%w: distribution of chain %d for chain %d", ErrMalformed, recv.ID, chainID)
	}
	if i >= 0 {
		// A chain already held stays where it is: a repeated distribution
		// must not rewind it.
		recv = d.st.Recv[key][i]
	}
	return recv, commit, nil
}

// putReceiver stores r as the newest state of its chain.
func (d *Device) putReceiver(key string, r *senderReceiver) {
	rs := slices.DeleteFunc(slices.Clone(d.st.Recv[key]), func(o *senderReceiver) bool { return o.ID == r.ID })
	rs = append(rs, r)
	if len(rs) > maxChainsPerSender {
		rs = rs[len(rs)-maxChainsPerSender:]
	}
	_, known := d.st.Recv[key]
	d.st.Recv[key] = rs
	if !known {
		d.pruneReceivers(key)
	}
}

// pruneReceivers forgets the least recently used (session, sender) entries
// beyond maxReceiverKeys, never keep, the one just added.
func (d *Device) pruneReceivers(keep string) {
	for len(d.st.Recv) > maxReceiverKeys {
		oldest, at := "", time.Time{}
		for k, rs := range d.st.Recv {
			var used time.Time
			for _, r := range rs {
				if r.Used.After(used) {
					used = r.Used
				}
			}
			if k != keep && (oldest == "" || used.Before(at)) {
				oldest, at = k, used
			}
		}
		delete(d.st.Recv, oldest)
	}
}

// openHeader opens this device's header on a session copy and returns the
// payload with a function that commits the session (and consumes the
// one-time prekeys of a first message).
func (d *Device) openHeader(rand io.Reader, sender PublicDevice, ad, body, header []byte) ([]byte, func(), error) {
	if len(header) < minHeaderLen || len(header) > maxHeaderLen {
		return nil, nil, fmt.Errorf("%w: header is %d bytes", ErrMalformed, len(header))
	}
	if header[0] != Version1 {
		return nil, nil, fmt.Errorf("%w: header version %d", ErrVersion, header[0])
	}
	typ, tag, rest := header[1], header[2:2+tagLen8], header[2+tagLen8:]
	var pq *pqxdhHeader
	switch typ {
	case headerMessage:
	case headerPreKey:
		if len(rest) < pqxdhLen {
			return nil, nil, fmt.Errorf("%w: prekey header is short", ErrMalformed)
		}
		h, err := parsePQXDH(rest[:pqxdhLen])
		if err != nil {
			return nil, nil, err
		}
		pq, rest = &h, rest[pqxdhLen:]
	default:
		return nil, nil, fmt.Errorf("%w: header type %d", ErrMalformed, typ)
	}
	if len(rest) < ratchetHeaderLen+1+tagLen {
		return nil, nil, fmt.Errorf("%w: header is short", ErrMalformed)
	}
	prefix, rh, ct := header[:len(header)-len(rest)], rest[:ratchetHeaderLen], rest[ratchetHeaderLen:]

	s, used, err := d.receivingSession(sender, tag, pq)
	if err != nil {
		return nil, nil, err
	}
	next, pt, err := s.decrypt(rand, rh, ct, headerAD(s.TH, ad, sum256(body), prefix), d.now())
	if err != nil {
		return nil, nil, err
	}
	return pt, func() {
		d.commitSession(sender, next)
		if used != nil {
			used(&d.st.PreKeys)
		}
	}, nil
}

// receivingSession finds the session a header's tag names, or sets one up
// from its PQXDH header. used, when not nil, consumes the one-time prekeys.
func (d *Device) receivingSession(sender PublicDevice, tag []byte, pq *pqxdhHeader) (*ratchet, func(*preKeys), error) {
	if p := d.st.Peers[sender.ID]; p != nil {
		for _, s := range p.Sessions {
			if bytes.Equal(s.tag(), tag) {
				return s, nil, nil
			}
		}
	}
	if pq == nil {
		return nil, nil, fmt.Errorf("%w: no session with device %q under this tag", ErrNoSession, sender.ID)
	}
	rk, err := d.st.PreKeys.lookup(*pq)
	if err != nil {
		return nil, nil, err
	}
	sk, th, err := pqxdhRespond(d.id, rk, sender, *pq)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(th[:tagLen8], tag) != 1 {
		return nil, nil, fmt.Errorf("%w: session tag does not match the transcript", ErrDecrypt)
	}
	return newResponder(sk, th, rk.spk, d.now()), rk.used, nil
}

// openBody1 decrypts nonce || ciphertext under k, checks the key commitment
// and removes the padding.
func openBody1(k, ad, sealed []byte) ([]byte, error) {
	nonce, ct := sealed[:nonceLen], sealed[nonceLen:]
	inner, err := newAEAD(k).Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: body", ErrDecrypt)
	}
	var zero [commitLen]byte
	if subtle.ConstantTimeCompare(inner[:commitLen], zero[:]) != 1 {
		return nil, fmt.Errorf("%w: body: key commitment", ErrDecrypt)
	}
	return unpad(inner[commitLen:])
}
