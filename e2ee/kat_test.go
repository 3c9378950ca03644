package e2ee

// Known-answer tests for the primitives, called the way this package calls
// them. The vectors are copied from the documents named on each table and
// were checked against at least two independent copies of each.

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex in test table: %v", err)
	}
	return b
}

// x25519 computes X25519(scalar, u) through crypto/ecdh, as wrapKey does.
func x25519(tb testing.TB, scalar, u []byte) []byte {
	tb.Helper()
	k, err := ecdh.X25519().NewPrivateKey(scalar)
	if err != nil {
		tb.Fatalf("NewPrivateKey: %v", err)
	}
	p, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		tb.Fatalf("NewPublicKey: %v", err)
	}
	out, err := k.ECDH(p)
	if err != nil {
		tb.Fatalf("ECDH: %v", err)
	}
	return out
}

// RFC 7748 section 5.2: X25519 on arbitrary inputs. The second u has its top
// bit set, which X25519 must ignore.
func TestKATX25519(t *testing.T) {
	tests := []struct {
		name, scalar, u, out string
	}{{
		name:   "vector 1",
		scalar: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
		u:      "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
		out:    "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
	}, {
		name:   "vector 2",
		scalar: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
		u:      "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
		out:    "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := x25519(t, mustHex(t, tt.scalar), mustHex(t, tt.u))
			if want := mustHex(t, tt.out); !bytes.Equal(got, want) {
				t.Errorf("X25519 = %x, want %x", got, want)
			}
		})
	}
}

// RFC 7748 section 5.2, the iterated test: k = u = 9, then repeatedly
// k, u = X25519(k, u), k. The million-iteration value is left out for time.
func TestKATX25519Iterated(t *testing.T) {
	want := map[int]string{
		1:    "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
		1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
	}
	k := make([]byte, 32)
	k[0] = 9
	u := bytes.Clone(k)
	for i := 1; i <= 1000; i++ {
		k, u = x25519(t, k, u), k
		if w, ok := want[i]; ok && !bytes.Equal(k, mustHex(t, w)) {
			t.Fatalf("after %d iterations k = %x, want %s", i, k, w)
		}
	}
}

// RFC 7748 section 6.1: the Diffie-Hellman example.
func TestKATX25519DiffieHellman(t *testing.T) {
	const (
		alicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
		alicePub  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
		bobPriv   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
		bobPub    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
		shared    = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
	)
	for _, tt := range []struct{ priv, pub string }{{alicePriv, alicePub}, {bobPriv, bobPub}} {
		k, err := ecdh.X25519().NewPrivateKey(mustHex(t, tt.priv))
		if err != nil {
			t.Fatal(err)
		}
		if got := k.PublicKey().Bytes(); !bytes.Equal(got, mustHex(t, tt.pub)) {
			t.Errorf("public key of %s… = %x, want %s", tt.priv[:8], got, tt.pub)
		}
	}
	if got := x25519(t, mustHex(t, alicePriv), mustHex(t, bobPub)); !bytes.Equal(got, mustHex(t, shared)) {
		t.Errorf("Alice's shared secret = %x, want %s", got, shared)
	}
	if got := x25519(t, mustHex(t, bobPriv), mustHex(t, alicePub)); !bytes.Equal(got, mustHex(t, shared)) {
		t.Errorf("Bob's shared secret = %x, want %s", got, shared)
	}
}

// RFC 8032 section 7.1: Ed25519 from a 32-byte seed, as NewIdentity makes
// keys.
func TestKATEd25519(t *testing.T) {
	abc := sha512.Sum512([]byte("abc"))
	tests := []struct {
		name, seed, pub, msg, sig string
	}{{
		name: "TEST 1",
		seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		pub:  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
		msg:  "",
		sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555" +
			"fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	}, {
		name: "TEST 2",
		seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		pub:  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
		msg:  "72",
		sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da" +
			"085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
	}, {
		name: "TEST 3",
		seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		pub:  "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
		msg:  "af82",
		sig: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac" +
			"18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
	}, {
		name: "TEST SHA(abc)",
		seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
		pub:  "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
		msg:  hex.EncodeToString(abc[:]),
		sig: "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589" +
			"09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv := ed25519.NewKeyFromSeed(mustHex(t, tt.seed))
			pub := priv.Public().(ed25519.PublicKey)
			if want := mustHex(t, tt.pub); !bytes.Equal(pub, want) {
				t.Errorf("public key = %x, want %x", pub, want)
			}
			msg, want := mustHex(t, tt.msg), mustHex(t, tt.sig)
			if got := ed25519.Sign(priv, msg); !bytes.Equal(got, want) {
				t.Errorf("signature = %x, want %x", got, want)
			}
			if !ed25519.Verify(pub, msg, want) {
				t.Error("the published signature does not verify")
			}
			if ed25519.Verify(pub, append(msg, 0), want) {
				t.Error("the signature verifies a longer message")
			}
		})
	}
}

// RFC 5869 appendix A, test cases 1 to 3: HKDF-SHA256 through
// x/crypto/hkdf, as kek calls it.
func TestKATHKDF(t *testing.T) {
	tests := []struct {
		name, ikm, salt, info string
		length                int
		prk, okm              string
	}{{
		name:   "case 1",
		ikm:    "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
		salt:   "000102030405060708090a0b0c",
		info:   "f0f1f2f3f4f5f6f7f8f9",
		length: 42,
		prk:    "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
		okm:    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
	}, {
		name: "case 2: longer inputs and outputs",
		ikm: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
			"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
			"404142434445464748494a4b4c4d4e4f",
		salt: "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" +
			"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
			"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
		info: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf" +
			"d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef" +
			"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
		length: 82,
		prk:    "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
		okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c" +
			"59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71" +
			"cc30c58179ec3e87c14c01d5c1f3434f1d87",
	}, {
		name:   "case 3: empty salt and info",
		ikm:    "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
		length: 42,
		prk:    "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
		okm:    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ikm, salt, info := mustHex(t, tt.ikm), mustHex(t, tt.salt), mustHex(t, tt.info)
			if got, want := hkdf.Extract(sha256.New, ikm, salt), mustHex(t, tt.prk); !bytes.Equal(got, want) {
				t.Errorf("PRK = %x, want %x", got, want)
			}
			got := make([]byte, tt.length)
			if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, info), got); err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tt.okm); !bytes.Equal(got, want) {
				t.Errorf("OKM = %x, want %x", got, want)
			}
		})
	}
}

// The inputs RFC 8439 section 2.8.2 and draft-irtf-cfrg-xchacha-03 appendix
// A.3.1 share: the sunscreen sentence, its associated data and key.
const (
	sunscreen = "Ladies and Gentlemen of the class of '99: If I could offer you " +
		"only one tip for the future, sunscreen would be it."
	sunscreenAAD = "50515253c0c1c2c3c4c5c6c7"
	sunscreenKey = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
)

// checkAEAD seals the sunscreen sentence under nonce, wants ct and tag, opens
// it back, and wants a changed tag and changed associated data refused.
func checkAEAD(t *testing.T, aead cipher.AEAD, nonce, ct, tag []byte) {
	t.Helper()
	pt, aad := []byte(sunscreen), mustHex(t, sunscreenAAD)
	want := append(bytes.Clone(ct), tag...)
	if got := aead.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
		t.Errorf("Seal = %x, want %x", got, want)
	}
	if got, err := aead.Open(nil, nonce, want, aad); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Open = %q, %v; want the plaintext", got, err)
	}
	if _, err := aead.Open(nil, nonce, want, aad[1:]); err == nil {
		t.Error("Open accepted different associated data")
	}
	want[len(want)-1] ^= 1
	if _, err := aead.Open(nil, nonce, want, aad); err == nil {
		t.Error("Open accepted a changed tag")
	}
}

// draft-irtf-cfrg-xchacha-03 appendix A.3.1: AEAD_XCHACHA20_POLY1305 through
// newAEAD, which seals bodies and key wraps.
func TestKATXChaCha20Poly1305(t *testing.T) {
	nonce := mustHex(t, "404142434445464748494a4b4c4d4e4f5051525354555657")
	ct := mustHex(t, "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"+
		"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"+
		"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"+
		"21f9664c97637da9768812f615c68b13b52e")
	checkAEAD(t, newAEAD(mustHex(t, sunscreenKey)), nonce, ct, mustHex(t, "c0875924c1c7987947deafd8780acf49"))
}

// RFC 8439 section 2.8.2: AEAD_CHACHA20_POLY1305 with a 96-bit nonce, the
// construction XChaCha20-Poly1305 extends, through x/crypto's chacha20poly1305.
func TestKATChaCha20Poly1305(t *testing.T) {
	aead, err := chacha20poly1305.New(mustHex(t, sunscreenKey))
	if err != nil {
		t.Fatal(err)
	}
	nonce := mustHex(t, "070000004041424344454647")
	ct := mustHex(t, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"+
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"+
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"+
		"3ff4def08e4b7a9de576d26586cec64b6116")
	checkAEAD(t, aead, nonce, ct, mustHex(t, "1ae10b594f09e26a7e902ecbd0600691"))
}
