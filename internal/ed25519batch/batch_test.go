package ed25519batch

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

// testKeys returns n deterministic key pairs.
func testKeys(n int) []ed25519.PrivateKey {
	out := make([]ed25519.PrivateKey, n)
	for i := range out {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = byte(i), 0x5a
		out[i] = ed25519.NewKeyFromSeed(seed)
	}
	return out
}

func signedEntries(n int, keys []ed25519.PrivateKey) []Entry {
	out := make([]Entry, n)
	for i := range out {
		k := keys[i%len(keys)]
		msg := fmt.Appendf(nil, "message %d %s", i, bytes.Repeat([]byte{'x'}, i%97))
		out[i] = Entry{Pub: k.Public().(ed25519.PublicKey), Msg: msg, Sig: ed25519.Sign(k, msg)}
	}
	return out
}

// assertAgrees checks Verify against crypto/ed25519 entry by entry.
func assertAgrees(t *testing.T, entries []Entry) []bool {
	t.Helper()
	got, err := Verify(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		want := len(e.Pub) == ed25519.PublicKeySize && ed25519.Verify(e.Pub, e.Msg, e.Sig)
		if got[i] != want {
			t.Fatalf("entry %d: batch says %v, crypto/ed25519 says %v", i, got[i], want)
		}
	}
	return got
}

func TestAllValid(t *testing.T) {
	for _, n := range []int{0, 1, 4, 5, 63, 64, 65, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			got := assertAgrees(t, signedEntries(n, testKeys(3)))
			for i, g := range got {
				if !g {
					t.Fatalf("valid entry %d rejected", i)
				}
			}
		})
	}
}

func TestBadSignaturesFound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		entries := signedEntries(150, testKeys(1+round%4))
		bad := 0
		for i := range entries {
			if r.IntN(10) != 0 {
				continue
			}
			bad++
			switch r.IntN(5) {
			case 0: // wrong message
				entries[i].Msg = append([]byte("x"), entries[i].Msg...)
			case 1: // flipped bit in R
				entries[i].Sig = bytes.Clone(entries[i].Sig)
				entries[i].Sig[r.IntN(32)] ^= 1 << r.IntN(8)
			case 2: // flipped bit in s (may make s non-canonical)
				entries[i].Sig = bytes.Clone(entries[i].Sig)
				entries[i].Sig[32+r.IntN(32)] ^= 1 << r.IntN(8)
			case 3: // another key
				entries[i].Pub = testKeys(9)[8].Public().(ed25519.PublicKey)
			case 4: // short signature or key
				if r.IntN(2) == 0 {
					entries[i].Sig = entries[i].Sig[:63]
				} else {
					entries[i].Pub = entries[i].Pub[:31]
				}
			}
		}
		got := assertAgrees(t, entries)
		rejected := 0
		for _, g := range got {
			if !g {
				rejected++
			}
		}
		if rejected != bad {
			t.Fatalf("round %d: %d bad entries, %d rejected", round, bad, rejected)
		}
	}
}

func TestNonCanonicalEncodings(t *testing.T) {
	k := testKeys(1)[0]
	entries := signedEntries(10, []ed25519.PrivateKey{k})
	// s + ℓ: same scalar, non-canonical encoding; crypto/ed25519 rejects it.
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	sig := bytes.Clone(entries[0].Sig)
	carry := 0
	for i := range 32 {
		v := int(sig[32+i]) + int(l[i]) + carry
		sig[32+i], carry = byte(v), v>>8
	}
	entries[0].Sig = sig
	// R = identity written with y = p + 1, a non-canonical encoding.
	sig = bytes.Clone(entries[1].Sig)
	copy(sig[:32], append([]byte{0xee}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...))
	entries[1].Sig = sig
	// R = identity with the sign bit set on x = 0.
	sig = bytes.Clone(entries[2].Sig)
	copy(sig[:32], append([]byte{1}, append(make([]byte, 30), 0x80)...))
	entries[2].Sig = sig
	got := assertAgrees(t, entries)
	if got[0] || got[1] || got[2] || !got[3] {
		t.Fatalf("got %v", got)
	}
}

// smallOrderPoint returns a point of order 8, found as [ℓ]P for points P
// decoded from counter-derived encodings.
func smallOrderPoint(t *testing.T) *edwards25519.Point {
	t.Helper()
	minusOne := edwards25519.NewScalar().Negate(scalarOne())
	zero := edwards25519.NewScalar()
	for i := range 1000 {
		h := sha512.Sum512(fmt.Appendf(nil, "point %d", i))
		p, err := new(edwards25519.Point).SetBytes(h[:32])
		if err != nil {
			continue
		}
		tp := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(minusOne, p, zero)
		tp.Add(tp, p) // [ℓ]P, the small-order part of P (times 5)
		four := new(edwards25519.Point).Add(tp, tp)
		four.Add(four, four)
		if four.Equal(edwards25519.NewIdentityPoint()) == 0 {
			return tp
		}
	}
	t.Fatal("no point of order 8 found")
	return nil
}

func scalarOne() *edwards25519.Scalar {
	one := make([]byte, 32)
	one[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(one)
	return s
}

func secretScalar(k ed25519.PrivateKey) *edwards25519.Scalar {
	h := sha512.Sum512(k.Seed())
	a, _ := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	return a
}

func hram(r, pub, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(r)
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return k
}

func nonce(i int) *edwards25519.Scalar {
	h := sha512.Sum512(fmt.Appendf(nil, "nonce %d", i))
	r, _ := edwards25519.NewScalar().SetUniformBytes(h[:])
	return r
}

// TestKeyWithSmallOrderPart: a public key A' = A + T is never batched, so
// results match crypto/ed25519 even though its cofactorless answer depends
// on k mod 8.
func TestKeyWithSmallOrderPart(t *testing.T) {
	k := testKeys(1)[0]
	a := secretScalar(k)
	T := smallOrderPoint(t)
	pubPoint := new(edwards25519.Point).ScalarBaseMult(a)
	pub := pubPoint.Add(pubPoint, T).Bytes()
	entries := signedEntries(20, testKeys(2)) // ordinary entries around them
	accepted := 0
	for i := range 64 {
		msg := fmt.Appendf(nil, "torsion key %d", i)
		r := nonce(i)
		rb := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
		s := edwards25519.NewScalar().MultiplyAdd(hram(rb, pub, msg), a, r)
		entries = append(entries, Entry{Pub: pub, Msg: msg, Sig: append(rb, s.Bytes()...)})
		if ed25519.Verify(pub, msg, entries[len(entries)-1].Sig) {
			accepted++
		}
	}
	if accepted == 0 || accepted == 64 {
		t.Fatalf("crypto/ed25519 accepted %d of 64; want a mix", accepted)
	}
	assertAgrees(t, entries)
}

// TestMixedOrderRDivergence pins the one known disagreement: a signer who
// adds a small-order point to R gets a signature that the cofactored batch
// equation accepts and crypto/ed25519 rejects.
func TestMixedOrderRDivergence(t *testing.T) {
	k := testKeys(1)[0]
	pub := k.Public().(ed25519.PublicKey)
	a := secretScalar(k)
	T := smallOrderPoint(t)
	msg := []byte("crafted")
	rPoint := new(edwards25519.Point).ScalarBaseMult(nonce(1))
	rb := rPoint.Add(rPoint, T).Bytes()
	s := edwards25519.NewScalar().MultiplyAdd(hram(rb, pub, msg), a, nonce(1))
	crafted := Entry{Pub: pub, Msg: msg, Sig: append(rb, s.Bytes()...)}
	if ed25519.Verify(pub, msg, crafted.Sig) {
		t.Fatal("crypto/ed25519 accepted the crafted signature")
	}
	entries := append(signedEntries(10, []ed25519.PrivateKey{k}), crafted)
	got, err := Verify(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got[10] {
		t.Fatal("the batch rejected the mixed-order R; update the package doc, the divergence is gone")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestRandomnessError(t *testing.T) {
	if _, err := Verify(signedEntries(10, testKeys(1)), failingReader{}); err == nil {
		t.Fatal("no error from a failing random source")
	}
}

// TestCanonicalEncoding compares the byte test with re-encoding the
// decoded point, on random and edge encodings.
func TestCanonicalEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var cases [][]byte
	for range 20000 {
		enc := make([]byte, 32)
		for i := range enc {
			enc[i] = byte(r.Uint32())
		}
		if r.IntN(3) == 0 { // near p: y = p - 20 .. 2^255 - 1
			for i := 1; i < 31; i++ {
				enc[i] = 0xff
			}
			enc[0] = byte(0xd9 + r.IntN(39))
			enc[31] = 0x7f | enc[31]&0x80
		}
		cases = append(cases, enc)
	}
	for _, y0 := range []byte{0, 1, 2, 0xec, 0xed, 0xee} {
		for _, sign := range []byte{0, 0x80} {
			lo := append([]byte{y0}, make([]byte, 31)...)
			lo[31] = sign
			hi := append([]byte{y0}, bytes.Repeat([]byte{0xff}, 31)...)
			hi[31] = 0x7f | sign
			cases = append(cases, lo, hi)
		}
	}
	decoded := 0
	for _, enc := range cases {
		p, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil {
			continue
		}
		decoded++
		if want := bytes.Equal(p.Bytes(), enc); canonicalEncoding(enc) != want {
			t.Fatalf("%x: canonicalEncoding says %v, re-encoding says %v", enc, !want, want)
		}
	}
	if decoded < 1000 {
		t.Fatalf("only %d encodings decoded", decoded)
	}
}

func FuzzVerify(f *testing.F) {
	e := signedEntries(1, testKeys(1))[0]
	f.Add(e.Pub, e.Msg, e.Sig, uint8(0))
	f.Add(e.Pub, e.Msg, e.Sig, uint8(7))
	f.Add(e.Pub[:5], e.Msg, e.Sig, uint8(1))
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte, copies uint8) {
		// The fuzzed entry sits among valid ones, so it is batched with them.
		entries := signedEntries(int(copies%16)+5, testKeys(2))
		entries = append(entries, Entry{Pub: pub, Msg: msg, Sig: sig})
		got := assertAgrees(t, entries)
		for i := range len(entries) - 1 {
			if !got[i] {
				t.Fatalf("valid entry %d rejected next to a fuzzed one", i)
			}
		}
	})
}

// BenchmarkVerify compares a batch of 1000 ~1 KB messages by 3 keys with
// 1000 crypto/ed25519 verifications of the same entries.
func BenchmarkVerify(b *testing.B) {
	entries := signedEntries(1000, testKeys(3))
	for i := range entries {
		entries[i].Msg = append(entries[i].Msg, bytes.Repeat([]byte{'m'}, 1000)...)
		k := testKeys(3)[i%3]
		entries[i].Sig = ed25519.Sign(k, entries[i].Msg)
	}
	b.Run("batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Verify(entries, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			for _, e := range entries {
				if !ed25519.Verify(e.Pub, e.Msg, e.Sig) {
					b.Fatal("bad")
				}
			}
		}
	})
}
