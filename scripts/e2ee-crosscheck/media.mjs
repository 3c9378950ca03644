// Media sealing of docs/e2ee.md section 13 ("Media through the SFU"), written from that section
// alone: the media key derivation, the sealed RTP payload, and the VP8 clear-byte rule read
// from RFC 7741's payload descriptor. No Go code about media was read to write it.

import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

export const MEDIA_LABEL = 'bedside/e2ee/v1/media';
export const MEDIA_OVERHEAD = 24; // tag(16) || clearLen(1) || counter(6) || keyID(1)
const TRAILER_LEN = 8;
const TAG_LEN = 16;
const MAX_CLEAR = 255;
const MAX_COUNTER = 2 ** 48 - 1;

// MediaError is a payload refused the way section 13 counts it: NoKey (no key of that id from
// that sender) or Unopened (anything else that does not open).
export class MediaError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

function field(s) {
  const b = utf8ToBytes(s);
  if (b.length > 0xffff) throw new RangeError(`media: ${b.length}-byte id`);
  return concatBytes(Uint8Array.of(b.length >>> 8, b.length & 0xff), b);
}

// mediaKey is K = HKDF-SHA256(secret, no salt, label || 0x00 || len16 session || session ||
// len16 call || call || len16 device || device || keyID)[0:32]; device is the sender's.
export function mediaKey(secret, keyId, ctx) {
  const info = concatBytes(utf8ToBytes(MEDIA_LABEL), Uint8Array.of(0x00), field(ctx.session),
    field(ctx.call), field(ctx.device), Uint8Array.of(keyId));
  return hkdf(sha256, secret, undefined, info, 32);
}

// counter(6), big-endian (section 1's notation).
function counter6(n) {
  const b = new Uint8Array(6);
  for (let i = 5, v = n; i >= 0; i--, v = Math.floor(v / 256)) b[i] = v % 256;
  return b;
}

// nonce = 0x00000000 || counter as 8 bytes big-endian.
function mediaNonce(trailerCounter) {
  return concatBytes(new Uint8Array(6), trailerCounter);
}

// sealMedia gives clear || AEAD(K, nonce, payload[clearLen:], ad) || clearLen || counter || keyID,
// with ad = clear || clearLen || counter || keyID.
export function sealMedia(key, keyId, counter, payload, clearLen) {
  if (!Number.isInteger(counter) || counter < 0 || counter > MAX_COUNTER) {
    throw new RangeError(`media: counter ${counter} outside 0 to 2^48 - 1`);
  }
  if (clearLen < 0 || clearLen > MAX_CLEAR || clearLen > payload.length) {
    throw new RangeError(`media: ${clearLen} clear bytes of a ${payload.length}-byte payload`);
  }
  const clear = payload.subarray(0, clearLen);
  const ctr = counter6(counter);
  const trailer = concatBytes(Uint8Array.of(clearLen), ctr, Uint8Array.of(keyId));
  const ct = chacha20poly1305(key, mediaNonce(ctr), concatBytes(clear, trailer))
    .encrypt(payload.subarray(clearLen));
  return concatBytes(clear, ct, trailer);
}

// openMedia reads the trailer, picks the sender's key by its id from keys (a Map id -> K) and
// opens the payload: clear bytes followed by the decrypted rest.
export function openMedia(keys, sealed) {
  if (sealed.length < TRAILER_LEN + TAG_LEN) {
    throw new MediaError('Unopened', `${sealed.length} bytes, under the ${MEDIA_OVERHEAD} added`);
  }
  const trailer = sealed.subarray(sealed.length - TRAILER_LEN);
  const clearLen = trailer[0];
  const keyId = trailer[TRAILER_LEN - 1];
  if (clearLen > sealed.length - TRAILER_LEN - TAG_LEN) {
    throw new MediaError('Unopened', `clearLen ${clearLen} past the ciphertext`);
  }
  const key = keys.get(keyId);
  if (!key) throw new MediaError('NoKey', `no key ${keyId} from this sender`);

  const clear = sealed.subarray(0, clearLen);
  const ct = sealed.subarray(clearLen, sealed.length - TRAILER_LEN);
  let rest;
  try {
    rest = chacha20poly1305(key, mediaNonce(trailer.subarray(1, 7)), concatBytes(clear, trailer))
      .decrypt(ct);
  } catch {
    throw new MediaError('Unopened', 'AEAD tag does not verify');
  }
  return concatBytes(clear, rest);
}

// vp8DescriptorLen is the length of RFC 7741's payload descriptor (section 4.2): the required
// byte X|R|N|S|R|PID; if X, the byte I|L|T|K|RSV; if I, a picture id of 1 byte, or 2 when its
// first bit M is set (15 bits); if L, TL0PICIDX; if T or K, TID|Y|KEYIDX. null when short.
export function vp8DescriptorLen(p) {
  if (p.length < 1) return null;
  let n = 1;
  if (p[0] & 0x80) {
    if (p.length < 2) return null;
    const ext = p[1];
    n = 2;
    if (ext & 0x80) {
      if (p.length < n + 1) return null;
      n += p[n] & 0x80 ? 2 : 1;
    }
    if (ext & 0x40) n++;
    if (ext & 0x30) n++;
  }
  return n <= p.length ? n : null;
}

// clearBytesVP8 is section 13's rule: the descriptor stays clear, and in the packet that starts
// a frame (S set, PID 0) the frame tag too: 10 bytes of a keyframe (3-byte tag, start code,
// size), 3 of another frame. RFC 7741 section 4.3: the tag's P bit (the first byte's lowest)
// is 0 on a keyframe. null where the doc does not say (a payload too short for the rule).
export function clearBytesVP8(p) {
  const d = vp8DescriptorLen(p);
  if (d === null) return null;
  const start = (p[0] & 0x10) !== 0 && (p[0] & 0x07) === 0;
  if (!start) return d;
  if (p.length <= d) return null;
  const n = d + ((p[d] & 0x01) === 0 ? 10 : 3);
  return n <= p.length ? n : null;
}
