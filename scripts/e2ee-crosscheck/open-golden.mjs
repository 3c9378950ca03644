#!/usr/bin/env node
// Opens the golden Bedside e2ee v1 envelopes (e2ee/testdata/golden/v1.json) as their receivers,
// written from docs/e2ee.md alone with the @noble primitives: no code of package e2ee.
// It also checks that tampered inputs are refused, that its Ed25519 verification gives the
// verdicts the file records, and, given docs/e2ee.md as a second argument, that the worked
// examples of its section 12 match what this opener computes and that media sealed by its
// section 13 (media.mjs) gives the known answer quoted there, opens, and refuses tampering.
//
//   node open-golden.mjs e2ee/testdata/golden/v1.json [docs/e2ee.md]
//
// One line per check on success; a message and exit status 1 on any mismatch.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';

import {
  MEDIA_OVERHEAD, MediaError, clearBytesVP8, mediaKey, openMedia, sealMedia,
} from './media.mjs';

// ---------------------------------------------------------------- notation (section 1)

const VERSION = 0x02;
const LABEL = {
  pqxdh: 'bedside/e2ee/v1/pqxdh',
  root: 'bedside/e2ee/v1/ratchet-root',
  messageKey: 'bedside/e2ee/v1/message-key',
  contentKey: 'bedside/e2ee/v1/content-key',
  groupSignature: 'bedside/e2ee/v1/group-signature',
};
const KEY = {
  identityEd: 0x01, identityX: 0x02, signedX: 0x03, oneTimeX: 0x04,
  lastKEM: 0x05, oneTimeKEM: 0x06, ephemeralX: 0x07, kemCipher: 0x08,
};
const MODE = { pairwise: 0x01, group: 0x02 };
const HEADER = { message: 0x01, prekey: 0x02 };
const KIND = { contentKey: 0x01, distribution: 0x02 };
const PQXDH_HEADER_LEN = 1133;
const RATCHET_HEADER_LEN = 40;
const TAG_LEN = 8;
const MAX_SKIP = 1000;
const BOUNDS = {
  pairwise: [330, 1081418],
  group: [402, 1081490],
  header: [99, 1272],
};

class OpenError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

// CheckError is a mismatch found by this cross-check (as opposed to a bug in it).
class CheckError extends Error {}

function fail(code, message) {
  throw new OpenError(code, message);
}

const u8 = (v) => Uint8Array.of(v);

function u16(v) {
  return Uint8Array.of(v >>> 8, v & 0xff);
}

function u32(v) {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function readU32(b, off) {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

function str(s) {
  return typeof s === 'string' ? utf8ToBytes(s) : s;
}

function field(x) {
  const b = str(x);
  return concatBytes(u16(b.length), b);
}

// key(t, id, k) = t(1) || u32(id) || field(k)
function typedKey(t, id, k) {
  return concatBytes(u8(t), u32(id), field(k));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function isZero(b) {
  return b.every((x) => x === 0);
}

// ---------------------------------------------------------------- primitives (sections 1, 2, 4)

const LOW_ORDER_PROBE = new Uint8Array(32).fill(0x5a);

// A low-order X25519 public key gives an all-zero output with any clamped scalar.
function checkPublicX(pub, code, what) {
  if (pub.length !== 32) fail(code, `${what}: ${pub.length} bytes, want 32`);
  if (isZero(rawX25519(LOW_ORDER_PROBE, pub))) fail(code, `${what}: low-order point`);
}

// rawX25519 is RFC 7748's function; noble itself refuses low-order inputs, reported as zero.
function rawX25519(priv, pub) {
  try {
    return x25519.getSharedSecret(priv, pub);
  } catch {
    return new Uint8Array(32);
  }
}

function dh(priv, pub, what) {
  const out = rawX25519(priv, pub);
  if (isZero(out)) fail('ErrDecrypt', `${what}: all-zero X25519 output`);
  return out;
}

function kdfRK(rk, dhOut) {
  const out = hkdf(sha256, dhOut, rk, utf8ToBytes(LABEL.root), 64);
  return [out.slice(0, 32), out.slice(32, 64)];
}

function kdfCK(ck) {
  return [hmac(sha256, ck, u8(0x02)), hmac(sha256, ck, u8(0x01))]; // [next chain key, mk]
}

function expand(mk) {
  const out = hkdf(sha256, mk, undefined, utf8ToBytes(LABEL.messageKey), 44);
  return [out.slice(0, 32), out.slice(32, 44)];
}

function contentKey(mk) {
  return hkdf(sha256, mk, undefined, utf8ToBytes(LABEL.contentKey), 32);
}

function aeadOpen(cipher, key, nonce, ct, ad, what) {
  try {
    return cipher(key, nonce, ad).decrypt(ct);
  } catch {
    return fail('ErrDecrypt', `${what}: AEAD tag does not verify`);
  }
}

const ED_L = ed25519.Point.Fn.ORDER;

function leNumber(b) {
  return BigInt(`0x${bytesToHex(b.slice().reverse()) || '0'}`);
}

// verifyEd25519 is Ed25519-Verify of docs/e2ee.md section 1 (Go's crypto/ed25519): S below L;
// A decodes as a point, non-canonical y and small order allowed; k = SHA-512(R || A || M) over
// the bytes as given; [S]B - [k]A, encoded, must equal R's 32 bytes (cofactorless).
function verifyEd25519(sig, msg, pub) {
  if (sig.length !== 64 || pub.length !== 32) return false;
  const s = leNumber(sig.subarray(32));
  if (s >= ED_L) return false;
  let A;
  try {
    A = ed25519.Point.fromBytes(pub, true); // zip215 decoding: y may be >= p, x = 0 with sign 1
  } catch {
    return false;
  }
  const k = leNumber(sha512(concatBytes(sig.subarray(0, 32), pub, msg))) % ED_L;
  const R = ed25519.Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
  return equal(R.toBytes(), sig.subarray(0, 32));
}

// nobleVerify is @noble/curves' own verify, shown beside the rule where they differ.
function nobleVerify(sig, msg, pub, zip215) {
  try {
    return ed25519.verify(sig, msg, pub, { zip215 });
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- padding (section 5)

function paddedLen(n) {
  const L = n + 1;
  if (L <= 256) return 256;
  const E = Math.floor(Math.log2(L));
  const S = Math.floor(Math.log2(E)) + 1;
  const mask = 2 ** (E - S) - 1;
  return (L + mask) & ~mask;
}

function unpadInner(inner) {
  if (inner.length < 32 || !isZero(inner.subarray(0, 32))) {
    fail('ErrDecrypt', 'key commitment: the 32 leading bytes are not zero');
  }
  const padded = inner.subarray(32);
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  if (end === 0 || padded[end - 1] !== 0x80) fail('ErrMalformed', 'padding: no 0x80 marker');
  const message = padded.subarray(0, end - 1);
  if (paddedLen(message.length) !== padded.length) {
    fail('ErrMalformed', `padding: ${padded.length} bytes for a ${message.length}-byte message`);
  }
  return message;
}

// ---------------------------------------------------------------- envelopes (section 5)

function associatedData(ctx, mode) {
  return concatBytes(u8(VERSION), u8(mode), field(ctx.sessionId), field(ctx.senderUser),
    field(ctx.senderDevice), field(ctx.clientMsgId));
}

function parseHeader(h) {
  const [min, max] = BOUNDS.header;
  if (h.length < min || h.length > max) fail('ErrMalformed', `header length ${h.length}`);
  if (h[0] !== VERSION) fail('ErrVersion', `header version ${h[0]}`);
  const type = h[1];
  if (type !== HEADER.message && type !== HEADER.prekey) fail('ErrMalformed', `header type ${type}`);
  const prefixLen = 2 + TAG_LEN + (type === HEADER.prekey ? PQXDH_HEADER_LEN : 0);
  if (h.length < prefixLen + RATCHET_HEADER_LEN + 16) fail('ErrMalformed', 'header too short');
  const out = {
    type,
    tag: h.slice(2, 10),
    prefix: h.slice(0, prefixLen),
    rh: h.slice(prefixLen, prefixLen + RATCHET_HEADER_LEN),
    ct: h.slice(prefixLen + RATCHET_HEADER_LEN),
  };
  if (type === HEADER.prekey) out.pqxdh = parsePQXDHHeader(h.subarray(10, 10 + PQXDH_HEADER_LEN));
  return out;
}

// u32(SPK id) || KEM type(1) || u32(KEM prekey id) || u32(OPK id) || EK(32) || CT(1088)
function parsePQXDHHeader(p) {
  const kemType = p[4];
  if (kemType !== KEY.lastKEM && kemType !== KEY.oneTimeKEM) {
    fail('ErrMalformed', `KEM type ${kemType}`);
  }
  return {
    spkId: readU32(p, 0), kemType, kemId: readU32(p, 5), opkId: readU32(p, 9),
    ek: p.slice(13, 45), ct: p.slice(45, 45 + 1088),
  };
}

// ---------------------------------------------------------------- PQXDH responder (section 3)

function findPrekey(list, id, what) {
  const k = list.find((p) => p.id === id);
  if (!k) fail('ErrUnknownPreKey', `${what} ${id}`);
  return k;
}

function pqxdhRespond(st, sender, p, trace) {
  const spk = findPrekey(st.prekeys.signed, p.spkId, 'signed prekey');
  const kemList = p.kemType === KEY.oneTimeKEM ? st.prekeys.kemOneTime : st.prekeys.kemLast;
  const kem = findPrekey(kemList, p.kemId, 'KEM prekey');
  const opk = p.opkId !== 0 ? findPrekey(st.prekeys.oneTime, p.opkId, 'one-time prekey') : null;

  checkPublicX(p.ek, 'ErrInvalidKey', 'EK');
  const ss = ml_kem768.decapsulate(p.ct, kem.secretKey);
  const dhs = [
    dh(spk.priv, sender.exchangeKey, 'DH1'),
    dh(st.self.ikPriv, p.ek, 'DH2'),
    dh(spk.priv, p.ek, 'DH3'),
  ];
  if (opk) dhs.push(dh(opk.priv, p.ek, 'DH4'));

  const transcript = concatBytes(
    utf8ToBytes(LABEL.pqxdh),
    field(sender.device), typedKey(KEY.identityEd, 0, sender.signingKey),
    typedKey(KEY.identityX, 0, sender.exchangeKey),
    field(st.self.device), typedKey(KEY.identityEd, 0, st.self.sigPub),
    typedKey(KEY.identityX, 0, st.self.ikPub),
    typedKey(KEY.signedX, spk.id, spk.pub),
    typedKey(p.kemType, kem.id, kem.pub),
    opk ? typedKey(KEY.oneTimeX, opk.id, opk.pub) : new Uint8Array(0),
    typedKey(KEY.ephemeralX, 0, p.ek),
    typedKey(KEY.kemCipher, 0, p.ct),
  );
  const th = sha256(transcript);
  const sk = hkdf(sha256, concatBytes(...dhs, ss), th, utf8ToBytes(LABEL.pqxdh), 32);

  dhs.forEach((v, i) => trace.set(`DH${i + 1}`, v));
  trace.set('SS', ss).set('transcript length', transcript.length).set('TH', th).set('SK', sk);
  return { th, sk, spk, used: { kemType: p.kemType, kemId: kem.id, opkId: p.opkId } };
}

// ---------------------------------------------------------------- Double Ratchet (section 4)

function newResponderSession(th, sk, spk) {
  return {
    th, dhsPriv: spk.priv, dhr: null, rk: sk, cks: null, ckr: null,
    ns: 0, nr: 0, pn: 0, skipped: [], prev: [],
  };
}

function skip(s, until) {
  if (s.ckr === null || until <= s.nr) return;
  if (until - s.nr > MAX_SKIP) fail('ErrTooManySkipped', `${until - s.nr} keys`);
  while (s.nr < until) {
    const [ck, mk] = kdfCK(s.ckr);
    s.skipped.push({ dh: s.dhr, n: s.nr, mk });
    s.ckr = ck;
    s.nr++;
  }
}

// dhStep is the DH ratchet step; draw returns the fresh ratchet private key.
function dhStep(s, dhPub, trace, draw) {
  if (s.dhr) s.prev = [...s.prev, s.dhr].slice(-8);
  s.pn = s.ns;
  s.ns = 0;
  s.nr = 0;
  checkPublicX(dhPub, 'ErrMalformed', 'ratchet key');
  s.dhr = dhPub;
  [s.rk, s.ckr] = kdfRK(s.rk, dh(s.dhsPriv, s.dhr, 'ratchet step'));
  trace.set('RK', s.rk).set('CKr', s.ckr);
  s.dhsPriv = draw();
  [s.rk, s.cks] = kdfRK(s.rk, dh(s.dhsPriv, s.dhr, 'ratchet step'));
}

// ratchetOpen runs the receiving steps on s (a copy the caller commits only on success).
function ratchetOpen(s, rh, ct, ad, trace, draw) {
  if (rh.length !== RATCHET_HEADER_LEN) fail('ErrMalformed', 'ratchet header length');
  const dhPub = rh.slice(0, 32);
  const pn = readU32(rh, 32);
  const n = readU32(rh, 36);

  let mk;
  const kept = s.skipped.findIndex((k) => k.n === n && equal(k.dh, dhPub));
  if (kept >= 0) {
    mk = s.skipped[kept].mk;
    s.skipped.splice(kept, 1);
  } else {
    if (s.dhr === null || !equal(dhPub, s.dhr)) {
      if (s.prev.some((p) => equal(p, dhPub))) fail('ErrReplay', 'old ratchet key');
      skip(s, pn);
      dhStep(s, dhPub, trace, draw);
    } else if (n < s.nr) {
      fail('ErrReplay', `message ${n} of the receiving chain was used`);
    }
    skip(s, n);
    [s.ckr, mk] = kdfCK(s.ckr);
    s.nr++;
  }

  const [key, nonce] = expand(mk);
  trace.set('mk', mk).set('key', key).set('nonce', nonce);
  return aeadOpen(chacha20poly1305, key, nonce, ct, concatBytes(ad, rh), 'header');
}

// ---------------------------------------------------------------- opening (sections 5 and 6)

// openHeader finds or sets up the ratchet session and returns the header's kind and payload.
function openHeader(st, sender, header, body, ad, trace) {
  const h = parseHeader(header);
  const sessions = st.sessions[sender.device] ?? [];
  const idx = sessions.findIndex((s) => equal(s.th.subarray(0, TAG_LEN), h.tag));
  let session;
  let setup = null;
  if (idx >= 0) {
    session = sessions[idx];
  } else if (h.type === HEADER.prekey) {
    setup = pqxdhRespond(st, sender, h.pqxdh, trace);
    if (!equal(setup.th.subarray(0, TAG_LEN), h.tag)) fail('ErrDecrypt', 'session tag is not TH[0:8]');
    session = newResponderSession(setup.th, setup.sk, setup.spk);
  } else {
    fail('ErrNoSession', 'no session with that tag');
  }

  const AD = concatBytes(session.th, ad, sha256(body), h.prefix);
  trace.set('ad', ad).set('AD length', AD.length);
  const plain = ratchetOpen(session, h.rh, h.ct, AD, trace, () => drawRatchetKey(st));
  if (plain.length < 1) fail('ErrMalformed', 'empty header payload');

  // Commit: the session becomes the active one; a first message uses up its one-time prekeys.
  const rest = sessions.filter((_, i) => i !== idx && !equal(sessions[i].th, session.th));
  st.sessions[sender.device] = [session, ...rest].slice(0, 4);
  if (setup) consumePrekeys(st, setup.used);
  return { kind: plain[0], payload: plain.slice(1) };
}

// drawRatchetKey is the fresh key of a DH step: the receiver's recorded ratchetKey first, as the
// Go test drew it, then random keys.
function drawRatchetKey(st) {
  return st.ratchetKeys.shift() ?? new Uint8Array(randomBytes(32));
}

function consumePrekeys(st, used) {
  if (used.kemType === KEY.oneTimeKEM) {
    st.prekeys.kemOneTime = st.prekeys.kemOneTime.filter((k) => k.id !== used.kemId);
  }
  if (used.opkId !== 0) st.prekeys.oneTime = st.prekeys.oneTime.filter((k) => k.id !== used.opkId);
}

function checkContext(st, sender, ctx) {
  for (const k of ['sessionId', 'senderUser', 'senderDevice', 'clientMsgId']) {
    const n = str(ctx[k]).length;
    if (n < 1 || n > 255) fail('ErrMalformed', `${k}: ${n} bytes`);
  }
  if (ctx.senderDevice !== sender.device || ctx.senderUser !== sender.user) {
    fail('ErrSenderMismatch', 'context does not name the sender device');
  }
  const pin = st.pins[sender.device];
  if (pin && (!equal(pin.sig, sender.signingKey) || !equal(pin.x, sender.exchangeKey))) {
    fail('ErrKeyChanged', sender.device);
  }
  checkPublicX(sender.exchangeKey, 'ErrInvalidKey', 'sender IK');
}

function openPairwise(st, sender, ctx, header, body, trace) {
  if (!header) fail('ErrNoSession', 'pairwise body without a header');
  const ad = associatedData(ctx, MODE.pairwise);
  const { kind, payload } = openHeader(st, sender, header, body, ad, trace);
  if (kind !== KIND.contentKey || payload.length !== 32) fail('ErrMalformed', 'header payload');
  trace.set('K', payload);
  const inner = aeadOpen(xchacha20poly1305, payload, body.subarray(2, 26), body.subarray(26), ad,
    'pairwise body');
  return unpadInner(inner);
}

function openGroup(st, sender, ctx, header, body, trace) {
  const ad = associatedData(ctx, MODE.group);
  const chainId = readU32(body, 2);
  const iteration = readU32(body, 6);
  const chainsKey = `${ctx.sessionId}\u0000${sender.device}`;
  const chains = st.chains[chainsKey] ?? [];
  let chain = chains.find((c) => c.id === chainId);

  if (header) {
    const { kind, payload } = openHeader(st, sender, header, body, ad, trace);
    if (kind !== KIND.distribution || payload.length !== 72) fail('ErrMalformed', 'header payload');
    const d = parseDistribution(payload);
    trace.set('chain id', u32(d.id)).set('CK_0', d.ck).set('signing', d.signing);
    if (d.id !== chainId) fail('ErrMalformed', 'distribution names another chain');
    if (!chain) chain = { ...d, skipped: [] };
  }
  if (!chain) fail('ErrNoSession', `no chain ${chainId}`);

  const unsigned = body.subarray(0, body.length - 64);
  const sig = body.subarray(body.length - 64);
  const signed = concatBytes(utf8ToBytes(LABEL.groupSignature), ad, unsigned);
  if (!verifyEd25519(sig, signed, chain.signing)) fail('ErrSignature', 'group body signature');

  const mk = chainMessageKey(chain, iteration);
  const k = contentKey(mk);
  trace.set(`MK_${iteration}`, mk).set(`K_${iteration}`, k);
  const inner = aeadOpen(xchacha20poly1305, k, body.subarray(10, 34),
    body.subarray(34, body.length - 64), concatBytes(ad, body.subarray(2, 10)), 'group body');
  const message = unpadInner(inner);

  st.chains[chainsKey] = [chain, ...chains.filter((c) => c.id !== chainId)].slice(0, 3);
  return message;
}

// distribution = u32(chain id) || u32(iteration) || CK_iteration(32) || signing public key(32)
function parseDistribution(p) {
  return { id: readU32(p, 0), iteration: readU32(p, 4), ck: p.slice(8, 40), signing: p.slice(40, 72) };
}

function chainMessageKey(chain, i) {
  if (i < chain.iteration) {
    const at = chain.skipped.findIndex((k) => k.i === i);
    if (at < 0) fail('ErrReplay', `chain iteration ${i}`);
    return chain.skipped.splice(at, 1)[0].mk;
  }
  if (i - chain.iteration > MAX_SKIP) fail('ErrTooManySkipped', `chain iteration ${i}`);
  while (chain.iteration < i) {
    const [ck, mk] = kdfCK(chain.ck);
    chain.skipped.push({ i: chain.iteration, mk });
    chain.ck = ck;
    chain.iteration++;
  }
  const [ck, mk] = kdfCK(chain.ck);
  chain.ck = ck;
  chain.iteration++;
  return mk;
}

// open works on a copy of the state and returns it with the message; on any failure the
// caller's state is untouched.
function open(state, sender, msg, trace = new Map()) {
  const st = structuredClone(state);
  checkContext(st, sender, msg);
  const body = msg.body;
  if (body.length < 2 || body[0] !== VERSION) fail('ErrVersion', `body version ${body[0]}`);
  const mode = body[1];
  if (mode !== MODE.pairwise && mode !== MODE.group) fail('ErrMalformed', `body mode ${mode}`);
  const [min, max] = mode === MODE.pairwise ? BOUNDS.pairwise : BOUNDS.group;
  if (body.length < min || body.length > max) fail('ErrMalformed', `body length ${body.length}`);

  const message = mode === MODE.pairwise
    ? openPairwise(st, sender, msg, msg.header, body, trace)
    : openGroup(st, sender, msg, msg.header, body, trace);
  st.pins[sender.device] ??= { sig: sender.signingKey, x: sender.exchangeKey };
  return { state: st, message };
}

// ---------------------------------------------------------------- the golden file (section 12)

function loadDevice(d) {
  return {
    user: d.user, device: d.device,
    signingKey: hexToBytes(d.signingKey), exchangeKey: hexToBytes(d.exchangeKey),
  };
}

// loadMessage reads one message; an absent header means none for the receiver.
function loadMessage(m) {
  return {
    name: m.name, sessionId: m.sessionId, senderUser: m.senderUser, senderDevice: m.senderDevice,
    clientMsgId: m.clientMsgId, header: m.header === undefined ? null : hexToBytes(m.header),
    body: hexToBytes(m.body), plaintext: m.plaintext,
  };
}

function loadScenario(g) {
  return {
    name: g.name ?? 'main', receiver: g.receiver, sender: loadDevice(g.sender),
    messages: g.messages.map(loadMessage), reply: g.reply ? loadMessage(g.reply) : null,
  };
}

function loadGolden(path) {
  const g = JSON.parse(readFileSync(path, 'utf8'));
  const signatureCases = (g.signatureCases ?? []).map((c) => ({
    name: c.name, pub: hexToBytes(c.publicKey), msg: hexToBytes(c.message),
    sig: hexToBytes(c.signature), valid: c.valid,
  }));
  const golden = { main: loadScenario(g), scenarios: (g.scenarios ?? []).map(loadScenario), signatureCases };
  const names = golden.main.messages.map((m) => m.name).join(', ');
  if (names !== 'pairwise-prekey, group-distribution, group-steady, pairwise-after-reply' ||
    !golden.main.reply || !golden.scenarios.some((s) => s.name === 'last-resort')) {
    throw new CheckError(`${path}: not the golden file this check knows (messages: ${names})`);
  }
  return golden;
}

// receiverState rebuilds a receiver's keys, checking each public value against its private one.
function receiverState(r) {
  const xPair = (priv, pub, what) => {
    const p = hexToBytes(priv);
    if (!equal(x25519.getPublicKey(p), hexToBytes(pub))) throw new CheckError(`${what}: public mismatch`);
    return p;
  };
  const kemPair = (k, what) => {
    const { publicKey, secretKey } = ml_kem768.keygen(hexToBytes(k.private));
    if (!equal(publicKey, hexToBytes(k.public))) throw new CheckError(`${what}: public mismatch`);
    return { id: k.id, pub: publicKey, secretKey };
  };
  const xPrekey = (k, what) => ({ id: k.id, priv: xPair(k.private, k.public, what),
    pub: hexToBytes(k.public) });
  return {
    self: {
      user: r.user, device: r.device, sigPub: hexToBytes(r.signingKey),
      ikPriv: xPair(r.exchangePrivate, r.exchangeKey, 'IK'), ikPub: hexToBytes(r.exchangeKey),
    },
    prekeys: {
      signed: [xPrekey(r.signedPreKey, 'SPK')],
      oneTime: r.oneTimePreKey ? [xPrekey(r.oneTimePreKey, 'OPK')] : [],
      kemLast: [kemPair(r.kemPreKey, 'PQSPK')],
      kemOneTime: r.kemOneTimePreKey ? [kemPair(r.kemOneTimePreKey, 'PQOPK')] : [],
    },
    ratchetKeys: r.ratchetKey ? [xPair(r.ratchetKey.private, r.ratchetKey.public, 'ratchetKey')] : [],
    pins: {}, sessions: {}, chains: {},
  };
}

// ---------------------------------------------------------------- checks

let checks = 0;

function pass(line) {
  checks++;
  console.log(`ok   ${line}`);
}

function mustOpen(state, sender, msg, trace) {
  const r = open(state, sender, msg, trace);
  const got = new TextDecoder('utf-8', { fatal: true }).decode(r.message);
  if (got !== msg.plaintext) {
    throw new CheckError(`${msg.name}: opened to ${JSON.stringify(got)}, want ${JSON.stringify(msg.plaintext)}`);
  }
  return r.state;
}

function mustRefuse(state, sender, msg, what, codes) {
  try {
    open(state, sender, msg);
  } catch (e) {
    if (!(e instanceof OpenError)) throw new CheckError(`${what}: failed for a wrong reason: ${e.stack}`);
    if (!codes.includes(e.code)) throw new CheckError(`${what}: refused with ${e.message}, want ${codes}`);
    pass(`${what}: refused (${e.message})`);
    return;
  }
  throw new CheckError(`${what}: a tampered message OPENED`);
}

function flip(bytes, at) {
  const b = bytes.slice();
  b[at] ^= 0x01;
  return b;
}

function flipString(s, at) {
  const b = utf8ToBytes(s);
  b[at] ^= 0x01;
  return new TextDecoder().decode(b);
}

function checkGolden(golden, traces) {
  const { sender, messages } = golden.main;
  const [m1, m2, m3, m4] = messages;
  const fresh = receiverState(golden.main.receiver);
  pass('receiver keys: every public key derives from its private key (ML-KEM seed d || z)');

  const afterM1 = mustOpen(fresh, sender, m1, traces.m1);
  pass(`${m1.name}: PQXDH as responder, ratchet step, body opens to "${m1.plaintext}"`);
  const afterM2 = mustOpen(afterM1, sender, m2, traces.m2);
  pass(`${m2.name}: same session by tag, distribution, signature, body opens to "${m2.plaintext}"`);

  if (afterM2.prekeys.oneTime.length !== 0 || afterM2.prekeys.kemOneTime.length !== 0) {
    throw new CheckError('one-time prekeys not consumed');
  }
  pass('one-time prekeys 3 and 4 are consumed; signed and last-resort prekeys kept');
  mustRefuse(afterM2, sender, m1, `${m1.name} replayed`, ['ErrReplay']);
  mustRefuse(afterM2, sender, m2, `${m2.name} replayed`, ['ErrReplay']);

  const reversed = mustOpen(fresh, sender, m2, new Map());
  mustOpen(reversed, sender, m1, new Map());
  pass('out of order: message 2 sets the session up, message 1 opens from a kept key');

  const afterM3 = mustOpen(afterM2, sender, m3, traces.m3);
  pass(`${m3.name}: no header, the chain held at iteration 1, signature, body opens to "${m3.plaintext}"`);
  mustRefuse(afterM3, sender, m3, `${m3.name} replayed`, ['ErrReplay']);
  mustRefuse(afterM1, sender, m3, `${m3.name} before the distribution of message 2`, ['ErrNoSession']);

  const afterReply = checkReply(afterM3, golden.main, traces.reply);
  const afterM4 = mustOpen(afterReply, sender, m4, traces.m4);
  pass(`${m4.name}: plain header, Alice's new ratchet key, DH step with ratchetKey, ` +
    `body opens to "${m4.plaintext}"`);
  mustRefuse(afterM4, sender, m4, `${m4.name} replayed`, ['ErrReplay']);
  mustRefuse(afterM4, sender, m1, `${m1.name} after ${m4.name} (its ratchet key is in Prev)`, ['ErrReplay']);

  checkTampered(sender, [[m1, fresh], [m2, afterM1], [m3, afterM2], [m4, afterReply]]);
  checkPQXDHFields(fresh, sender, m1);
  checkLayers(traces, m1, m2);
  checkLastResort(golden.scenarios.find((s) => s.name === 'last-resort'), traces.lr1);
  checkSignatureCases(golden.signatureCases);
}

// checkReply reads Bob's answer with his own sending chain (section 4, Sending): the one the DH
// step of message 1 made with receiver.ratchetKey. A device does not open what it sent; this
// shows the recorded key is the one Bob drew, and checks the sending half of that step.
function checkReply(state, scenario, trace) {
  const { reply, sender: alice } = scenario;
  const st = structuredClone(state);
  const s = st.sessions[alice.device][0];
  const h = parseHeader(reply.header);
  if (reply.senderDevice !== st.self.device) throw new CheckError('reply: not sent by the receiver');
  if (h.type !== HEADER.message || !equal(h.tag, s.th.subarray(0, TAG_LEN))) {
    throw new CheckError('reply: want a plain header (0x01) with the session tag');
  }
  if (!equal(h.rh, concatBytes(x25519.getPublicKey(s.dhsPriv), u32(s.pn), u32(s.ns)))) {
    throw new CheckError('reply: the ratchet header is not pub(DHs) || u32(PN) || u32(Ns)');
  }
  trace.set('RK', s.rk).set('CKs', s.cks);
  let mk;
  [s.cks, mk] = kdfCK(s.cks);
  s.ns++;
  const [key, nonce] = expand(mk);
  const ad = associatedData(reply, MODE.pairwise);
  trace.set('mk', mk).set('key', key).set('nonce', nonce).set('ad', ad);

  const AD = concatBytes(s.th, ad, sha256(reply.body), h.prefix, h.rh);
  const plain = aeadOpen(chacha20poly1305, key, nonce, h.ct, AD, 'reply header');
  if (plain.length !== 33 || plain[0] !== KIND.contentKey) throw new CheckError('reply: header payload');
  trace.set('K', plain.slice(1));
  const inner = aeadOpen(xchacha20poly1305, plain.slice(1), reply.body.subarray(2, 26),
    reply.body.subarray(26), ad, 'reply body');
  const got = new TextDecoder('utf-8', { fatal: true }).decode(unpadInner(inner));
  if (got !== reply.plaintext) throw new CheckError(`reply: reads ${JSON.stringify(got)}`);
  pass(`${reply.name}: Bob's answer decrypts under his first sending chain (ratchetKey, PN 0, N 0): ` +
    `"${got}"`);
  return st;
}

function checkLastResort(sc, trace) {
  const { sender } = sc;
  const [m] = sc.messages;
  const fresh = receiverState(sc.receiver);
  if (fresh.prekeys.oneTime.length + fresh.prekeys.kemOneTime.length !== 0) {
    throw new CheckError('last-resort: the receiver has one-time prekeys');
  }
  const p = parseHeader(m.header).pqxdh;
  if (p.kemType !== KEY.lastKEM || p.opkId !== 0) {
    throw new CheckError('last-resort: want KEM type 0x05, OPK id 0');
  }

  const after = mustOpen(fresh, sender, m, trace);
  if (trace.has('DH4')) throw new CheckError('last-resort: DH4 computed');
  pass(`${sc.name}/${m.name}: PQXDH without DH4, KEM prekey ${p.kemId} of type 0x05, ` +
    `body opens to "${m.plaintext}"`);
  if (after.prekeys.signed.length !== 1 || after.prekeys.kemLast.length !== 1) {
    throw new CheckError('last-resort: the signed or last-resort prekey was deleted');
  }
  pass(`${sc.name}: the signed and last-resort prekeys stay after use`);
  mustRefuse(after, sender, m, `${sc.name}/${m.name} replayed while the session is kept`, ['ErrReplay']);
  mustOpen(fresh, sender, m, new Map());
  pass(`${sc.name}/${m.name} opens again on a device without the session (section 11's known limit)`);

  checkTampered(sender, [[m, fresh]]);
  checkPQXDHFields(fresh, sender, m);
}

function tamperCases(msg) {
  const cases = [];
  const h = msg.header;
  if (h) {
    const prekey = h[1] === HEADER.prekey;
    const rhAt = 2 + TAG_LEN + (prekey ? PQXDH_HEADER_LEN : 0);
    cases.push(['header session tag', { header: flip(h, 2) }]);
    if (prekey) {
      cases.push(['header PQXDH EK', { header: flip(h, 2 + TAG_LEN + 13) }],
        ['header PQXDH CT', { header: flip(h, 2 + TAG_LEN + 45 + 500) }]);
    }
    cases.push(['header ratchet key', { header: flip(h, rhAt) }],
      ['header ratchet N', { header: flip(h, rhAt + 38) }],
      ['header ratchet ciphertext', { header: flip(h, rhAt + 40) }],
      ['header tag (last byte)', { header: flip(h, h.length - 1) }]);
  }
  const b = msg.body;
  const group = b[1] === MODE.group;
  cases.push(['body nonce', { body: flip(b, group ? 10 : 2) }],
    ['body ciphertext', { body: flip(b, b.length - 100) }],
    ['body last byte', { body: flip(b, b.length - 1) }]);
  if (group) {
    cases.push(['body chain id', { body: flip(b, 5) }], ['body chain iteration', { body: flip(b, 9) }]);
  }
  cases.push(['context session id', { sessionId: flipString(msg.sessionId, 3) }],
    ['context sender user', { senderUser: flipString(msg.senderUser, 0) }],
    ['context client message id', { clientMsgId: flipString(msg.clientMsgId, 7) }]);
  return cases;
}

// checkTampered flips one bit of each message on the state it opens from. A changed sender user
// is given with a sender renamed to match, else the context check refuses it before any AEAD.
function checkTampered(sender, variants) {
  const codes = ['ErrDecrypt', 'ErrSignature', 'ErrUnknownPreKey', 'ErrMalformed', 'ErrNoSession'];
  for (const [msg, state] of variants) {
    for (const [what, change] of tamperCases(msg)) {
      const t = { ...msg, ...change };
      const s = change.senderUser ? { ...sender, user: t.senderUser } : sender;
      mustRefuse(state, s, t, `${msg.name} with one bit flipped in ${what}`, codes);
    }
  }
}

// checkPQXDHFields changes one field of a prekey header, expecting the error section 3 names.
function checkPQXDHFields(fresh, sender, msg) {
  const at = 2 + TAG_LEN;
  const change = (fn) => {
    const h = msg.header.slice();
    fn(h);
    return { ...msg, header: h };
  };
  const p = parsePQXDHHeader(msg.header.subarray(at));
  const other = p.kemType === KEY.oneTimeKEM ? KEY.lastKEM : KEY.oneTimeKEM;
  const cases = [
    [`KEM type 0x0${p.kemType} read as 0x0${other}`, (h) => { h[at + 4] = other; }, 'ErrUnknownPreKey'],
    ['unknown KEM type 0x07', (h) => { h[at + 4] = 0x07; }, 'ErrMalformed'],
    ['signed prekey id 9', (h) => { h.set(u32(9), at); }, 'ErrUnknownPreKey'],
    ['low-order EK (all zero)', (h) => { h.fill(0, at + 13, at + 45); }, 'ErrInvalidKey'],
    p.opkId !== 0
      ? ['one-time prekey id 0 (no DH4)', (h) => { h.set(u32(0), at + 9); }, 'ErrDecrypt']
      : ['one-time prekey id 3, not held', (h) => { h.set(u32(3), at + 9); }, 'ErrUnknownPreKey'],
  ];
  for (const [what, fn, code] of cases) {
    mustRefuse(fresh, sender, change(fn), `${msg.name} with ${what}`, [code]);
  }
}

// checkLayers shows that each check opening relies on refuses on its own, beyond the header
// AEAD that binds the whole body: the body AEADs, the group signature, key commitment, padding.
function checkLayers(traces, m1, m2) {
  const b = m2.body;
  const ad = associatedData(m2, MODE.group);
  const signed = (body) => concatBytes(utf8ToBytes(LABEL.groupSignature), ad, body.subarray(0, -64));
  const sigOf = (body) => body.subarray(body.length - 64);
  const signing = traces.m2.get('signing');

  if (!verifyEd25519(sigOf(b), signed(b), signing)) throw new CheckError('genuine signature refused');
  for (const at of [0, 5, 20, 200, b.length - 70, b.length - 1]) {
    const t = flip(b, at);
    if (verifyEd25519(sigOf(t), signed(t), signing)) throw new CheckError(`signature accepts flip at ${at}`);
  }
  pass('group signature (Ed25519-Verify, section 1) refuses a flipped bit anywhere in the body');

  const s = leNumber(sigOf(b).slice(32));
  const sPlusL = hexToBytes((s + ED_L).toString(16).padStart(64, '0')).reverse();
  const malleated = concatBytes(sigOf(b).slice(0, 32), sPlusL);
  if (verifyEd25519(malleated, signed(b), signing)) throw new CheckError('verify accepts S + L');
  pass('Ed25519 verification refuses the malleated signature (R, S + L)');

  const k0 = traces.m2.get('K_0');
  const bodyAD = concatBytes(ad, b.subarray(2, 10));
  for (const [what, ct, aad] of [
    ['ciphertext', flip(b, 100).subarray(34, -64), bodyAD],
    ['associated data (iteration)', b.subarray(34, -64), flip(bodyAD, bodyAD.length - 1)],
  ]) {
    expectCode(() => aeadOpen(xchacha20poly1305, k0, b.subarray(10, 34), ct, aad, 'body'),
      'ErrDecrypt', `group body AEAD under K_0 refuses a flipped bit in its ${what}`);
  }

  const k = traces.m1.get('K');
  const nonce = new Uint8Array(24).fill(7);
  const adM1 = associatedData(m1, MODE.pairwise);
  const seal = (inner) => xchacha20poly1305(k, nonce, adM1).encrypt(inner);
  const good = concatBytes(new Uint8Array(32), utf8ToBytes('hi'), u8(0x80), new Uint8Array(253));
  const openInner = (inner) => unpadInner(aeadOpen(xchacha20poly1305, k, nonce, seal(inner), adM1, 'x'));
  if (new TextDecoder().decode(openInner(good)) !== 'hi') throw new CheckError('self-sealed inner');
  expectCode(() => openInner(flip(good, 31)), 'ErrDecrypt',
    'key commitment: an inner whose 32 leading bytes are not zero is refused');
  expectCode(() => openInner(concatBytes(good, new Uint8Array(16))), 'ErrMalformed',
    'padding: an inner padded past padded(len) is refused');
  expectCode(() => openInner(flip(good, 34)), 'ErrMalformed',
    'padding: an inner without the 0x80 marker is refused');
  checkPaddingExamples();
}

// checkSignatureCases compares verifyEd25519, written from section 1, with crypto/ed25519's
// verdicts the Go test recorded, on the cases where libraries differ; it shows @noble/curves'
// strict mode differing in both directions, as section 1 says libraries do.
function checkSignatureCases(cases) {
  const differ = new Set();
  for (const c of cases) {
    const got = verifyEd25519(c.sig, c.msg, c.pub);
    if (got !== c.valid) {
      throw new CheckError(`Ed25519 case "${c.name}": section 1's rule says ${got}, ` +
        `crypto/ed25519 ${c.valid}`);
    }
    const strict = nobleVerify(c.sig, c.msg, c.pub, false);
    if (strict !== got) differ.add(strict);
    const note = strict === got ? '' : ` (@noble/curves zip215:false: ${strict ? 'valid' : 'refused'})`;
    pass(`Ed25519 ${c.name}: ${got ? 'valid' : 'refused'}, as crypto/ed25519${note}`);
  }
  if (differ.size !== 2) {
    throw new CheckError('signatureCases: want cases where noble strict differs both ways');
  }
}

function expectCode(fn, code, line) {
  try {
    fn();
  } catch (e) {
    if (e instanceof OpenError && e.code === code) return pass(line);
    throw new CheckError(`${line}: got ${e.stack}`);
  }
  throw new CheckError(`${line}: it was accepted`);
}

function checkPaddingExamples() {
  const examples = [[0, 256], [255, 256], [256, 272], [1000, 1024], [5000, 5120],
    [1048576, 1081344]];
  for (const [n, want] of examples) {
    if (paddedLen(n) !== want) throw new CheckError(`padded(${n}) = ${paddedLen(n)}, want ${want}`);
  }
  pass('padding: section 5 examples (0, 255, 256, 1000, 5000, 1 MiB)');
}

// ---------------------------------------------------------------- the worked examples

// The paragraphs of section 12 that quote values, by the bold words that open them, and the
// values this opener computes that each must quote.
const DOC_PARTS = [
  ['m1', '**Message 1,', ['DH1', 'DH2', 'DH3', 'DH4', 'SS', 'transcript length', 'TH', 'SK', 'RK', 'CKr',
    'mk', 'key', 'nonce', 'ad', 'AD length', 'K']],
  ['m2', '**Message 2,', ['mk', 'key', 'nonce', 'ad', 'chain id', 'CK_0', 'signing', 'MK_0', 'K_0']],
  ['m3', '**Message 3,', ['MK_1', 'K_1']],
  ['reply', "**Bob's answer,", ['RK', 'CKs', 'mk', 'key', 'nonce', 'ad', 'K']],
  ['m4', '**Message 4,', ['RK', 'CKr', 'mk', 'key', 'nonce', 'ad', 'AD length', 'K']],
  ['lr1', '**Scenario `last-resort`', ['DH1', 'DH2', 'DH3', 'SS', 'transcript length', 'TH', 'SK', 'RK',
    'CKr', 'mk', 'key', 'nonce', 'ad', 'AD length', 'K']],
];

// docValues reads "name = hex" lines (and a few other shapes) of each part of section 12.
function docValues(path) {
  const text = readFileSync(path, 'utf8');
  const s12 = text.slice(text.indexOf('## 12. Test vectors'));
  const end = s12.indexOf('### Vectors of the primitives');
  const starts = DOC_PARTS.map(([key, marker]) => {
    const at = s12.indexOf(marker);
    if (at < 0 || at > end) throw new CheckError(`docs: section 12 has no paragraph "${marker}"`);
    return [key, at];
  }).sort((a, b) => a[1] - b[1]);
  const out = {};
  starts.forEach(([key, at], i) => {
    const next = s12.indexOf('\n**', at + 2);
    const stop = i + 1 < starts.length ? starts[i + 1][1] : (next > 0 && next < end ? next : end);
    out[key] = partValues(s12.slice(at, stop));
  });
  return out;
}

function partValues(part) {
  const out = new Map();
  for (const line of part.split('\n')) {
    const names = /^\s*(DH\d|SS|TH|SK|RK|CKr|CKs|mk|key|nonce|ad|MK_\d+|K_\d+)\b.*?=\s*([0-9a-f]{16,})\b/;
    let g = line.match(names);
    if (g) out.set(g[1], g[2]);
    g = line.match(/\bK = ([0-9a-f]{64})\b/);
    if (g) out.set('K', g[1]);
    g = line.match(/^\s*(chain id|CK_0|signing)\s+([0-9a-f]{8,})\b/);
    if (g) out.set(g[1], g[2]);
    g = line.match(/^transcript: (\d+) bytes/);
    if (g) out.set('transcript length', Number(g[1]));
    g = line.match(/^AD .*\((\d+) bytes\)/);
    if (g) out.set('AD length', Number(g[1]));
  }
  return out;
}

function checkDocExample(path, traces) {
  const doc = docValues(path);
  for (const [key, marker, names] of DOC_PARTS) {
    const where = `docs: section 12, ${marker.replaceAll('*', '').replace(/,$/, '')}`;
    for (const name of names) {
      if (!doc[key].has(name)) throw new CheckError(`${where}: no value for ${name}`);
      const got = traces[key].get(name);
      const mine = typeof got === 'number' ? got : bytesToHex(got);
      if (mine !== doc[key].get(name)) {
        throw new CheckError(`${where}: ${name} is ${doc[key].get(name)}, this opener computes ${mine}`);
      }
    }
    pass(`${where}: ${names.length} worked-example values match`);
  }
}

// ---------------------------------------------------------------- media (section 13)

// docMediaAnswer reads the known answer of section 13 from its own words: "secret 32 bytes
// `01`, key id 9, session `s1`, call `c1`, device `doc-phone`, counter 0, payload `10 11 ...`
// with 4 clear bytes seals to" and the indented hex lines that follow.
function docMediaAnswer(path) {
  const text = readFileSync(path, 'utf8');
  const from = text.indexOf('## 13. Media through the SFU');
  const s13 = text.slice(Math.max(from, 0));
  const at = s13.indexOf('Known answer');
  if (from < 0 || at < 0) {
    throw new CheckError('docs: section 13 has no "Known answer" paragraph');
  }
  const next = s13.indexOf('\n###', at);
  const part = s13.slice(at, next < 0 ? undefined : next);
  const want = (re, what) => {
    const g = part.replace(/\s+/g, ' ').match(re);
    if (!g) throw new CheckError(`docs: section 13's known answer gives no ${what}`);
    return g[1];
  };
  const secretLen = Number(want(/secret (\d+) bytes `[0-9a-f]{2}`/, 'secret length'));
  const sealedLines = part.match(/seals to\n\n((?: {4}[0-9a-f][0-9a-f ]*\n)+)/);
  if (!sealedLines) throw new CheckError("docs: section 13's known answer gives no sealed hex");
  const overhead = s13.replace(/\s+/g, ' ').match(/Sealing adds (\d+) bytes/);
  if (!overhead) throw new CheckError('docs: section 13 gives no "Sealing adds N bytes"');
  const secretByte = parseInt(want(/secret \d+ bytes `([0-9a-f]{2})`/, 'secret'), 16);
  return {
    secret: new Uint8Array(secretLen).fill(secretByte),
    overhead: Number(overhead[1]),
    keyId: Number(want(/key id (\d+)/, 'key id')),
    ctx: {
      session: want(/session `([^`]+)`/, 'session'),
      call: want(/call `([^`]+)`/, 'call'),
      device: want(/device `([^`]+)`/, 'device'),
    },
    counter: Number(want(/counter (\d+)/, 'counter')),
    payload: hexToBytes(want(/payload `([0-9a-f ]+)`/, 'payload').replaceAll(' ', '')),
    clearLen: Number(want(/with (\d+) clear bytes? seals to/, 'clear byte count')),
    sealed: sealedLines[1].replace(/\s+/g, ''),
  };
}

function mediaMustRefuse(keys, sealed, what, code) {
  try {
    openMedia(keys, sealed);
  } catch (e) {
    if (!(e instanceof MediaError)) throw new CheckError(`${what}: failed for a wrong reason: ${e.stack}`);
    if (e.code !== code) throw new CheckError(`${what}: refused with ${e.message}, want ${code}`);
    pass(`${what}: refused (${e.message})`);
    return;
  }
  throw new CheckError(`${what}: a tampered payload OPENED`);
}

// checkMedia seals section 13's known answer, opens it, and refuses it changed or out of context.
function checkMedia(path) {
  const a = docMediaAnswer(path);
  const key = mediaKey(a.secret, a.keyId, a.ctx);
  const sealed = sealMedia(key, a.keyId, a.counter, a.payload, a.clearLen);
  if (bytesToHex(sealed) !== a.sealed) {
    throw new CheckError(`docs: section 13's known answer is ${a.sealed}, ` +
      `sealing gives ${bytesToHex(sealed)}`);
  }
  if (sealed.length - a.payload.length !== a.overhead || a.overhead !== MEDIA_OVERHEAD) {
    throw new CheckError(`media: sealing adds ${sealed.length - a.payload.length} bytes, ` +
      `section 13 says ${a.overhead}`);
  }
  pass(`media: section 13's known answer sealed byte for byte (${sealed.length} bytes, ` +
    `${MEDIA_OVERHEAD} added)`);
  if (clearBytesVP8(a.payload) !== a.clearLen) {
    throw new CheckError(`media: the VP8 rule gives ${clearBytesVP8(a.payload)} clear bytes of the ` +
      `known answer's payload, the doc ${a.clearLen}`);
  }
  pass(`media: the known answer's ${a.clearLen} clear bytes are the VP8 rule's (a delta frame start)`);

  const keys = new Map([[a.keyId, key]]);
  if (!equal(openMedia(keys, sealed), a.payload)) throw new CheckError('media: known answer opens wrong');
  pass('media: the known answer opens back to its payload');

  checkMediaTampered(a, keys, sealed);
  checkVP8Rule(key, a.keyId);
}

function checkMediaTampered(a, keys, sealed) {
  const n = sealed.length;
  const parts = [['clear prefix', 0], ['ciphertext', a.clearLen], ['tag', n - 9],
    ['clearLen', n - 8], ['counter', n - 2], ['key id', n - 1]];
  const other = a.keyId ^ 0x01;
  const both = new Map([...keys, [other, mediaKey(a.secret, other, a.ctx)]]);
  for (const [what, at] of parts) {
    mediaMustRefuse(both, flip(sealed, at), `media: known answer with one bit flipped in the ${what}`,
      'Unopened');
  }
  mediaMustRefuse(keys, flip(sealed, n - 1), `media: known answer under key id ${other}, not held`, 'NoKey');

  for (const [what, change] of [['device', { device: 'doc-tablet' }], ['call', { call: 'c2' }],
    ['session', { session: 's2' }]]) {
    const ctx = { ...a.ctx, ...change };
    const wrong = new Map([[a.keyId, mediaKey(a.secret, a.keyId, ctx)]]);
    mediaMustRefuse(wrong, sealed, `media: known answer under another ${what} (${Object.values(change)[0]})`,
      'Unopened');
  }
}

// VP8 payloads built from RFC 7741 section 4.2's descriptor and RFC 6386's frame tag, with the
// clear bytes section 13's rule gives them, counted by hand.
const VP8_KEY_TAG = [0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]; // P 0, 640x480
const VP8_DELTA_TAG = [0x31, 0x01, 0x00]; // P 1
const VP8_CASES = [
  ['keyframe start, 1-byte descriptor', [0x10, ...VP8_KEY_TAG], 1 + 10],
  ['delta frame start, 1-byte descriptor', [0x10, ...VP8_DELTA_TAG], 1 + 3],
  ['continuation (S 0)', [0x00, ...VP8_KEY_TAG], 1],
  ['S set in partition 1', [0x11, ...VP8_KEY_TAG], 1],
  ['keyframe start, X with a 15-bit picture id', [0x90, 0x80, 0xab, 0xcd, ...VP8_KEY_TAG], 4 + 10],
  ['delta frame start, X with a 15-bit picture id', [0x90, 0x80, 0x80, 0x00, ...VP8_DELTA_TAG], 4 + 3],
  ['delta frame start, X with a 7-bit picture id', [0x90, 0x80, 0x7f, ...VP8_DELTA_TAG], 3 + 3],
  ['continuation, X with I (15 bits), L, T and K', [0x80, 0xf0, 0x81, 0x02, 0x03, 0x60,
    ...VP8_KEY_TAG], 6],
  ['keyframe start, X with L and K only', [0x90, 0x50, 0x03, 0x20, ...VP8_KEY_TAG], 4 + 10],
];

function checkVP8Rule(key, keyId) {
  const keys = new Map([[keyId, key]]);
  VP8_CASES.forEach(([what, head, want], i) => {
    const payload = Uint8Array.from([...head, ...utf8ToBytes('frame data')]);
    const got = clearBytesVP8(payload);
    if (got !== want) throw new CheckError(`media: VP8 ${what}: ${got} clear bytes, want ${want}`);
    const sealed = sealMedia(key, keyId, i + 1, payload, got);
    if (!equal(sealed.subarray(0, got), payload.subarray(0, got)) ||
      !equal(openMedia(keys, sealed), payload)) {
      throw new CheckError(`media: VP8 ${what}: sealed payload does not keep its clear bytes or open`);
    }
    pass(`media: VP8 ${what}: ${want} clear byte${want === 1 ? '' : 's'}, sealed and opened`);
  });

  const last = sealMedia(key, keyId, 2 ** 48 - 1, Uint8Array.of(1, 2, 3), 0);
  if (bytesToHex(last.subarray(-7, -1)) !== 'ffffffffffff' || openMedia(keys, last)[2] !== 3) {
    throw new CheckError('media: counter 2^48 - 1 does not seal and open');
  }
  try {
    sealMedia(key, keyId, 2 ** 48, Uint8Array.of(1), 0);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return pass('media: counter 2^48 - 1 is the last one sealed; 2^48 is refused');
  }
  throw new CheckError('media: counter 2^48 sealed');
}

function main() {
  const [goldenPath, docPath] = process.argv.slice(2);
  if (!goldenPath) {
    console.error('usage: node open-golden.mjs e2ee/testdata/golden/v1.json [docs/e2ee.md]');
    process.exit(2);
  }
  const start = performance.now();
  const traces = Object.fromEntries(DOC_PARTS.map(([key]) => [key, new Map()]));
  try {
    checkGolden(loadGolden(goldenPath), traces);
    if (process.env.CROSSCHECK_TRACE) printTraces(traces);
    if (docPath) {
      checkDocExample(docPath, traces);
      checkMedia(docPath);
    }
  } catch (e) {
    const known = e instanceof OpenError || e instanceof CheckError;
    console.error(`FAIL e2ee cross-check: ${known ? e.message : e.stack ?? e}`);
    process.exit(1);
  }
  const ms = Math.round(performance.now() - start);
  console.log(`e2ee cross-check done in ${ms} ms`);
  console.log(`crosscheck: ${checks} passed, 0 failed`);
}

// printTraces shows every value computed (CROSSCHECK_TRACE=1), to write section 12 from.
function printTraces(traces) {
  for (const [key, trace] of Object.entries(traces)) {
    for (const [name, v] of trace) {
      console.log(`${key} ${name} = ${typeof v === 'number' ? v : bytesToHex(v)}`);
    }
  }
}

main();
