package stateres

import (
	"encoding/binary"
	"hash/maphash"
	"slices"

	"github.com/gomatrixlib/gomatrixlib/internal/bytesconv"
)

// idTable maps strings (event IDs) to int32 values for one resolution. It
// keeps its own copy of every key in one arena, so that a lookup reads the
// probed slots and the arena, both dense, instead of the caller's strings,
// which lie scattered over the room's events: on a large room most of a Go
// map lookup's time goes to fetching the stored key to compare it.
//
// Slots hold 32 bits of a seeded hash and an entry reference; entries are
// numbered in insertion order. A key is found by comparing the whole key
// with its arena copy, never by the hash alone.
type idTable struct {
	seed  maphash.Seed
	slots []tableSlot // power-of-two length, at most half full
	arena []byte
	ends  []int // ends[e]: end of entry e in arena (start: ends[e-1], or 0)
	vals  []int32
}

// tableSlot is one open-addressing slot; ref 0 means empty, else entry+1.
type tableSlot struct {
	hash uint32
	ref  uint32
}

// newIDTable returns a table sized for about n keys of about keyLen bytes.
func newIDTable(n, keyLen int) *idTable {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return &idTable{
		seed:  maphash.MakeSeed(),
		slots: make([]tableSlot, size),
		arena: make([]byte, 0, n*keyLen),
		ends:  make([]int, 0, n),
		vals:  make([]int32, 0, n),
	}
}

// holds reports whether entry e is s.
func (t *idTable) holds(e uint32, s string) bool {
	start := 0
	if e > 0 {
		start = t.ends[e-1]
	}
	return string(t.arena[start:t.ends[e]]) == s
}

// key returns the key of entry e.
func (t *idTable) key(e int32) string {
	start := 0
	if e > 0 {
		start = t.ends[e-1]
	}
	return string(t.arena[start:t.ends[e]])
}

// find returns the entry holding s, or -1.
func (t *idTable) find(s string) int32 {
	h := uint32(maphash.String(t.seed, s))
	mask := uint32(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := t.slots[i]
		if sl.ref == 0 {
			return -1
		}
		if sl.hash == h && t.holds(sl.ref-1, s) {
			return int32(sl.ref - 1)
		}
	}
}

// get returns the value stored for s.
func (t *idTable) get(s string) (int32, bool) {
	if e := t.find(s); e >= 0 {
		return t.vals[e], true
	}
	return 0, false
}

// insert returns the entry holding s, adding s with value v if it is not
// there (added reports which).
func (t *idTable) insert(s string, v int32) (entry int32, added bool) {
	h := uint32(maphash.String(t.seed, s))
	mask := uint32(len(t.slots) - 1)
	i := h & mask
	for ; ; i = (i + 1) & mask {
		sl := t.slots[i]
		if sl.ref == 0 {
			break
		}
		if sl.hash == h && t.holds(sl.ref-1, s) {
			return int32(sl.ref - 1), false
		}
	}
	e := uint32(len(t.vals))
	t.arena = append(t.arena, s...)
	t.ends = append(t.ends, len(t.arena))
	t.vals = append(t.vals, v)
	t.slots[i] = tableSlot{hash: h, ref: e + 1}
	if 2*len(t.vals) > len(t.slots) {
		t.grow()
	}
	return int32(e), true
}

// reserve makes room for n more keys of about keyLen bytes.
func (t *idTable) reserve(n, keyLen int) {
	want := len(t.vals) + n
	t.arena = slices.Grow(t.arena, n*keyLen)
	t.ends = slices.Grow(t.ends, n)
	t.vals = slices.Grow(t.vals, n)
	if 2*want > len(t.slots) {
		size := len(t.slots)
		for size < 2*want {
			size <<= 1
		}
		t.rehash(size)
	}
}

// grow doubles the slots.
func (t *idTable) grow() { t.rehash(2 * len(t.slots)) }

// rehash moves the entries to size slots, placing them from their hashes.
func (t *idTable) rehash(size int) {
	old := t.slots
	t.slots = make([]tableSlot, size)
	mask := uint32(len(t.slots) - 1)
	for _, sl := range old {
		if sl.ref == 0 {
			continue
		}
		i := sl.hash & mask
		for t.slots[i].ref != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = sl
	}
}

// len returns the number of entries.
func (t *idTable) len() int { return len(t.vals) }

// keyTable interns (type, state_key) pairs as key IDs 0, 1, 2, ... in an
// idTable, so a lookup compares against the table's own copy instead of
// the strings of whichever event introduced the key.
type keyTable struct {
	t       *idTable
	list    []stateKey // list[id]: the key, with the strings it was added with
	scratch []byte
	// IDs of (m.room.create, ""), (m.room.power_levels, "") and
	// (m.room.join_rules, ""), -1 until added.
	createKey, plKey, joinRulesKey int32
}

func newKeyTable(n int) *keyTable {
	return &keyTable{t: newIDTable(n, 24), createKey: -1, plKey: -1, joinRulesKey: -1}
}

// encode returns typ and sk as one string, unambiguously: the length of
// typ, then typ, then sk. The string aliases k.scratch: use it before the
// next call.
func (k *keyTable) encode(typ, sk string) string {
	b := binary.AppendUvarint(k.scratch[:0], uint64(len(typ)))
	b = append(b, typ...)
	b = append(b, sk...)
	k.scratch = b
	return bytesconv.String(b)
}

// reserve makes room for n more keys.
func (k *keyTable) reserve(n int) {
	k.t.reserve(n, 24)
	k.list = slices.Grow(k.list, n)
}

// find returns the ID of (typ, sk), or -1.
func (k *keyTable) find(typ, sk string) int32 {
	return k.t.find(k.encode(typ, sk))
}

// intern returns the ID of key, adding it if needed (added reports which).
func (k *keyTable) intern(key stateKey) (id int32, added bool) {
	// insert copies the encoded bytes into its arena.
	id, added = k.t.insert(k.encode(key.Type, key.StateKey), 0)
	if added {
		k.list = append(k.list, key)
		if key.StateKey == "" {
			switch key.Type {
			case typeCreate:
				k.createKey = id
			case typePowerLevels:
				k.plKey = id
			case typeJoinRules:
				k.joinRulesKey = id
			}
		}
	}
	return id, added
}

// len returns the number of keys.
func (k *keyTable) len() int { return len(k.list) }
