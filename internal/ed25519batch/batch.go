// Package ed25519batch verifies many ed25519 signatures together.
//
// A batch is checked with one multi-scalar multiplication: for random
// 128-bit weights z_i it tests
//
//	[8]( Σ z_i R_i + Σ_A (Σ_{i by A} z_i k_i) A − (Σ z_i s_i) B ) = 0
//
// where k_i = SHA-512(R_i || A_i || M_i) reduced mod ℓ. A batch that fails
// is split in halves until the bad signatures are found; small groups are
// checked one by one with crypto/ed25519.
//
// Agreement with crypto/ed25519 (and libsodium), which check the
// cofactorless equation R = [s]B − [k]A by comparing encodings: every
// signature that takes the batch path has a canonical s, an R whose
// encoding is canonical, and a public key with no small-order component
// (checked once per key); anything else is checked on its own with
// crypto/ed25519. Under those conditions the batch and the single check
// differ in one case only: an R with a small-order component, which only
// the holder of the private key can produce on purpose. The cofactored
// batch equation accepts such a signature and crypto/ed25519 rejects it.
// Callers that need bit-for-bit agreement with other implementations
// (consensus on which events exist) must not use this package; see
// signing.VerifyOptions.
package ed25519batch

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"

	"filippo.io/edwards25519"
)

// Entry is one signature to check: sig by the public key pub over msg.
type Entry struct {
	Pub, Msg, Sig []byte
}

// maxBatch bounds one multi-scalar multiplication. Past a few dozen
// points the shared doublings are already amortised, and a smaller batch
// keeps the cost of bisecting a bad one down.
const maxBatch = 64

// individual is the group size below which a failed batch is checked one
// signature at a time.
const individual = 4

// key is a decoded public key, shared by all entries signed with it.
type key struct {
	point     *edwards25519.Point
	batchable bool // decodes and has no small-order component
	slot      int  // index in the current batch's points, -1 if absent
	coef      *edwards25519.Scalar
}

// prepared is an entry ready for the batch equation.
type prepared struct {
	index int
	r     *edwards25519.Point
	s, k  *edwards25519.Scalar
	key   *key
}

// Verify checks every entry and returns, for each, whether its signature
// is valid. rnd supplies the batch weights (nil means crypto/rand); an
// error reading it is returned and no result with it.
func Verify(entries []Entry, rnd io.Reader) ([]bool, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	ok := make([]bool, len(entries))
	keys := make(map[string]*key)
	batch := make([]prepared, 0, len(entries))
	h := sha512.New()
	var digest [sha512.Size]byte
	for i, e := range entries {
		if len(e.Pub) != ed25519.PublicKeySize || len(e.Sig) != ed25519.SignatureSize {
			continue // ok[i] stays false, as crypto/ed25519 would answer
		}
		k := keys[string(e.Pub)]
		if k == nil {
			k = newKey(e.Pub)
			keys[string(e.Pub)] = k
		}
		p, usable := prepare(e, k, h, &digest)
		if !usable {
			ok[i] = ed25519.Verify(e.Pub, e.Msg, e.Sig)
			continue
		}
		p.index = i
		batch = append(batch, p)
	}
	for start := 0; start < len(batch); start += maxBatch {
		end := min(start+maxBatch, len(batch))
		if err := check(batch[start:end], entries, ok, rnd); err != nil {
			return nil, err
		}
	}
	return ok, nil
}

func newKey(pub []byte) *key {
	k := &key{slot: -1}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return k
	}
	k.point = a
	k.batchable = torsionFree(a)
	return k
}

// torsionFree reports whether [ℓ]P = 0, computed as [ℓ−1]P = −P. Scalar
// multiplication works on the integer ℓ−1, so on a point with a
// small-order part T the left side carries [ℓ−1]T = [4]T (ℓ ≡ 5 mod 8)
// and the right side −T, which differ unless T = 0.
func torsionFree(p *edwards25519.Point) bool {
	one := make([]byte, 32)
	one[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(one)
	s.Negate(s) // ℓ − 1
	lhs := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(s, p, edwards25519.NewScalar())
	return lhs.Equal(new(edwards25519.Point).Negate(p)) == 1
}

// prepare decodes an entry for the batch path; usable is false when the
// entry must be checked on its own.
func prepare(e Entry, k *key, h hash.Hash, digest *[sha512.Size]byte) (prepared, bool) {
	if !k.batchable {
		return prepared{}, false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(e.Sig[32:])
	if err != nil {
		return prepared{}, false
	}
	if !canonicalEncoding(e.Sig[:32]) {
		return prepared{}, false
	}
	r, err := new(edwards25519.Point).SetBytes(e.Sig[:32])
	if err != nil {
		return prepared{}, false
	}
	h.Reset()
	h.Write(e.Sig[:32])
	h.Write(e.Pub)
	h.Write(e.Msg)
	kk, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return prepared{}, false
	}
	return prepared{r: r, s: s, k: kk, key: k}, true
}

// canonicalEncoding reports whether enc, which decodes to a point, is that
// point's canonical encoding (what Point.Bytes gives back, and so what
// crypto/ed25519 compares R with): y below p, and no sign bit on x = 0,
// which happens for y = 1 and y = p − 1 only. Checking the bytes spares
// the field inversion of re-encoding.
func canonicalEncoding(enc []byte) bool {
	allOnes := true // bytes 1..30 are all 0xff
	zeros := true   // bytes 1..30 are all zero
	for _, c := range enc[1:31] {
		allOnes = allOnes && c == 0xff
		zeros = zeros && c == 0
	}
	top := enc[31] & 0x7f
	if allOnes && top == 0x7f && enc[0] >= 0xed {
		return false // y ≥ p
	}
	if enc[31]&0x80 == 0 {
		return true
	}
	yIsOne := zeros && top == 0 && enc[0] == 1
	yIsMinusOne := allOnes && top == 0x7f && enc[0] == 0xec
	return !yIsOne && !yIsMinusOne
}

// check verifies group as one batch and, if it fails, finds the bad
// entries by bisection.
func check(group []prepared, entries []Entry, ok []bool, rnd io.Reader) error {
	if len(group) <= individual {
		for _, p := range group {
			e := entries[p.index]
			ok[p.index] = ed25519.Verify(e.Pub, e.Msg, e.Sig)
		}
		return nil
	}
	good, err := equation(group, rnd)
	if err != nil {
		return err
	}
	if good {
		for _, p := range group {
			ok[p.index] = true
		}
		return nil
	}
	half := len(group) / 2
	if err := check(group[:half], entries, ok, rnd); err != nil {
		return err
	}
	return check(group[half:], entries, ok, rnd)
}

// equation evaluates the cofactored batch equation for group.
func equation(group []prepared, rnd io.Reader) (bool, error) {
	weights := make([]byte, 16*len(group))
	if _, err := io.ReadFull(rnd, weights); err != nil {
		return false, fmt.Errorf("ed25519batch: reading random weights: %w", err)
	}
	scalars := make([]*edwards25519.Scalar, 0, 2*len(group)+1)
	points := make([]*edwards25519.Point, 0, 2*len(group)+1)
	bCoef := edwards25519.NewScalar()
	scalars = append(scalars, bCoef)
	points = append(points, edwards25519.NewGeneratorPoint())
	var wide [32]byte
	for i, p := range group {
		copy(wide[:16], weights[16*i:16*i+16])
		z, _ := edwards25519.NewScalar().SetCanonicalBytes(wide[:]) // < 2^128 < ℓ
		scalars = append(scalars, z)
		points = append(points, p.r)
		bCoef.MultiplyAdd(z, p.s, bCoef)
		if p.key.slot < 0 {
			p.key.slot = len(points)
			p.key.coef = edwards25519.NewScalar()
			scalars = append(scalars, p.key.coef)
			points = append(points, p.key.point)
		}
		p.key.coef.MultiplyAdd(z, p.k, p.key.coef)
	}
	for _, p := range group {
		p.key.slot = -1
	}
	bCoef.Negate(bCoef)
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	sum.MultByCofactor(sum)
	return sum.Equal(edwards25519.NewIdentityPoint()) == 1, nil
}
