package roomserver

import (
	"cmp"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
)

// maxHops bounds a snapshot's delta chain: a snapshot is at most
// maxHops-1 deltas away from a full snapshot, so a read visits at most
// maxHops rows. A state event whose parent is already maxHops-1 deltas away
// gets a full snapshot instead of a delta.
const maxHops = 64

// ErrBrokenState is returned when a stored snapshot chain cannot be read
// back: a row missing, from another room, a chain longer than the bound,
// unreadable entries, or a state whose size differs from the one stored
// with it. The state is then unknown; it is never guessed.
var ErrBrokenState = errors.New("roomserver: stored state snapshot is broken")

// stateEntry is one entry of a state: the event that holds (type, state key).
type stateEntry struct {
	Type     string `json:"t"`
	StateKey string `json:"k"`
	EventID  string `json:"e"`
}

func compareEntries(a, b stateEntry) int {
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return cmp.Compare(a.StateKey, b.StateKey)
}

func sortEntries(e []stateEntry) { slices.SortFunc(e, compareEntries) }

// entriesFormat is the first byte of an encoded entry list.
const entriesFormat = 1

// encodeEntries writes entries (sorted by key, keys unique) as the format
// byte, the count and, per entry, type, state key and event ID, each as a
// uvarint length and the bytes.
func encodeEntries(es []stateEntry) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, e := range es {
		n += 3*binary.MaxVarintLen64 + len(e.Type) + len(e.StateKey) + len(e.EventID)
	}
	b := make([]byte, 0, n)
	b = append(b, entriesFormat)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		for _, s := range [3]string{e.Type, e.StateKey, e.EventID} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// decodeEntries reads what encodeEntries wrote. It rejects anything else:
// another format byte, a count or length beyond the input or not in its
// shortest encoding, keys out of order or repeated, an empty type or event
// ID, trailing bytes.
func decodeEntries(b []byte) ([]stateEntry, error) {
	if len(b) == 0 || b[0] != entriesFormat {
		return nil, errors.New("unknown entry list format")
	}
	b = b[1:]
	count, n := uvarint(b)
	if n <= 0 {
		return nil, errors.New("bad entry count")
	}
	b = b[n:]
	// Each entry takes at least 5 bytes (three lengths, a type byte and an
	// event ID byte), so the count cannot make us allocate past the input.
	if count > uint64(len(b))/5 {
		return nil, fmt.Errorf("entry count %d exceeds the data", count)
	}
	out := make([]stateEntry, 0, count)
	// One string holds all the bytes; the entries' strings are slices of
	// it, so decoding allocates twice, not three times per entry.
	all := string(b)
	off := 0
	str := func() (string, error) {
		l, n := uvarint(b[off:])
		if n <= 0 || l > uint64(len(b)-off-n) {
			return "", errors.New("bad string length")
		}
		start := off + n
		off = start + int(l)
		return all[start:off], nil
	}
	for i := uint64(0); i < count; i++ {
		var e stateEntry
		var err error
		if e.Type, err = str(); err != nil {
			return nil, err
		}
		if e.StateKey, err = str(); err != nil {
			return nil, err
		}
		if e.EventID, err = str(); err != nil {
			return nil, err
		}
		if e.Type == "" || e.EventID == "" {
			return nil, errors.New("entry with an empty type or event ID")
		}
		if len(out) > 0 && compareEntries(out[len(out)-1], e) >= 0 {
			return nil, errors.New("entries out of order or repeated")
		}
		out = append(out, e)
	}
	if off != len(b) {
		return nil, errors.New("trailing bytes after the entries")
	}
	return out, nil
}

// uvarint is binary.Uvarint that also rejects overlong encodings (a last
// byte of zero after the first), so that one list has one encoding.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, 0
	}
	return v, n
}

// querier is what snapshot reads need: the database or a transaction.
type querier interface {
	Query(q string, args ...any) (*sql.Rows, error)
	QueryRow(q string, args ...any) *sql.Row
}

// snapshotRow is one row of rs_snapshots.
type snapshotRow struct {
	id, parent int64
	roomID     string
	hops       int
	size       int64
}

// readChain reads the headers of snapshot id and its ancestors up to the
// full snapshot, in one recursive query, newest first, and checks that they
// form an intact chain of roomID. readEntries reads a row's entries.
func readChain(q querier, roomID string, id int64) ([]snapshotRow, error) {
	if id <= 0 {
		return nil, fmt.Errorf("%w: snapshot %d of %s is not a snapshot ID", ErrBrokenState, id, roomID)
	}
	// Headers only: the entries are read by primary key when needed (a
	// recursive query would also copy them through a temporary table).
	rows, err := q.Query(`WITH RECURSIVE chain(id, parent, room_id, hops, size, n) AS (
		SELECT id, parent, room_id, hops, size, 1 FROM rs_snapshots WHERE id = ?
		UNION ALL
		SELECT s.id, s.parent, s.room_id, s.hops, s.size, c.n + 1
		FROM rs_snapshots s JOIN chain c ON s.id = c.parent
		WHERE c.parent <> 0 AND c.n <= ?)
		SELECT id, parent, room_id, hops, size FROM chain ORDER BY n`, id, maxHops+1)
	if err != nil {
		return nil, err
	}
	var chain []snapshotRow
	for rows.Next() {
		var r snapshotRow
		if err := rows.Scan(&r.id, &r.parent, &r.roomID, &r.hops, &r.size); err != nil {
			rows.Close()
			return nil, err
		}
		chain = append(chain, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: snapshot %d of %s is missing", ErrBrokenState, id, roomID)
	}
	for i, r := range chain {
		if r.roomID != roomID {
			return nil, fmt.Errorf("%w: snapshot %d belongs to %s, not %s", ErrBrokenState, r.id, r.roomID, roomID)
		}
		if i+1 < len(chain) {
			if r.parent != chain[i+1].id || r.hops != chain[i+1].hops+1 {
				return nil, fmt.Errorf("%w: snapshot %d does not continue from %d", ErrBrokenState, r.id, chain[i+1].id)
			}
		}
	}
	if len(chain) > maxHops {
		return nil, fmt.Errorf("%w: snapshot %d is more than %d deltas from a full snapshot", ErrBrokenState, id, maxHops-1)
	}
	last := chain[len(chain)-1]
	if last.parent != 0 {
		return nil, fmt.Errorf("%w: snapshot %d, an ancestor of %d, is missing", ErrBrokenState, last.parent, id)
	}
	if last.hops != 0 {
		return nil, fmt.Errorf("%w: full snapshot %d records %d hops", ErrBrokenState, last.id, last.hops)
	}
	return chain, nil
}

// readEntries reads and decodes a snapshot row's entries.
func readEntries(q querier, r snapshotRow) ([]stateEntry, error) {
	var blob []byte
	err := q.QueryRow(`SELECT entries FROM rs_snapshots WHERE id = ?`, r.id).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: snapshot %d vanished while read", ErrBrokenState, r.id)
	}
	if err != nil {
		return nil, err
	}
	es, err := decodeEntries(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot %d: %v", ErrBrokenState, r.id, err)
	}
	return es, nil
}

// loadSnapshot returns the full state of a snapshot, sorted by key.
func loadSnapshot(q querier, roomID string, id int64) ([]stateEntry, error) {
	chain, err := readChain(q, roomID, id)
	if err != nil {
		return nil, err
	}
	base, err := readEntries(q, chain[len(chain)-1])
	if err != nil {
		return nil, err
	}
	if len(chain) == 1 {
		if int64(len(base)) != chain[0].size {
			return nil, fmt.Errorf("%w: snapshot %d has %d entries, %d recorded", ErrBrokenState, id, len(base), chain[0].size)
		}
		return base, nil
	}
	// The deltas, oldest first, sorted by key with the newest entry of a
	// key kept, merged into the base in one pass: no map of the whole
	// state, no sort of it.
	var changes []stateEntry
	for i := len(chain) - 2; i >= 0; i-- {
		delta, err := readEntries(q, chain[i])
		if err != nil {
			return nil, err
		}
		changes = append(changes, delta...)
	}
	slices.SortStableFunc(changes, compareEntries)
	newest := changes[:0]
	for i, e := range changes {
		if i+1 < len(changes) && compareEntries(e, changes[i+1]) == 0 {
			continue // a newer delta replaces it
		}
		newest = append(newest, e)
	}
	out := mergeEntries(base, newest)
	if int64(len(out)) != chain[0].size {
		return nil, fmt.Errorf("%w: snapshot %d has %d entries, %d recorded", ErrBrokenState, id, len(out), chain[0].size)
	}
	return out, nil
}

// lookupSnapshot returns the event IDs of the given keys in a snapshot
// (absent keys are left out), reading the chain newest first: the first
// row that holds a key decides it.
func lookupSnapshot(q querier, roomID string, id int64, keys []eventauth.StateKey) (map[eventauth.StateKey]string, error) {
	chain, err := readChain(q, roomID, id)
	if err != nil {
		return nil, err
	}
	out := make(map[eventauth.StateKey]string, len(keys))
	pending := len(keys)
	for _, r := range chain {
		if pending == 0 {
			break
		}
		es, err := readEntries(q, r)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if _, done := out[k]; done {
				continue
			}
			i, found := slices.BinarySearchFunc(es, stateEntry{Type: k.Type, StateKey: k.StateKey}, compareEntries)
			if found {
				out[k] = es[i].EventID
				pending--
			}
		}
	}
	return out, nil
}

// snapshotHeader reads the parts of a snapshot row that writing a child
// needs.
func snapshotHeader(q querier, roomID string, id int64) (hops int, size int64, err error) {
	var room string
	err = q.QueryRow(`SELECT room_id, hops, size FROM rs_snapshots WHERE id = ?`, id).Scan(&room, &hops, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("%w: snapshot %d of %s is missing", ErrBrokenState, id, roomID)
	}
	if err != nil {
		return 0, 0, err
	}
	if room != roomID {
		return 0, 0, fmt.Errorf("%w: snapshot %d belongs to %s, not %s", ErrBrokenState, id, room, roomID)
	}
	return hops, size, nil
}

// writeSnapshot stores the state made of parent's state (0: the empty
// state) with changes applied, and returns its ID. added is how many of the
// changes' keys parent's state lacks. The snapshot is a delta holding just
// the changes unless the parent's chain is at the bound (or there is no
// parent), in which case parent's state is loaded and a full snapshot is
// written. It runs in the caller's transaction.
func writeSnapshot(tx querier, roomID string, parent int64, changes []stateEntry, added int) (int64, error) {
	changes = slices.Clone(changes)
	sortEntries(changes)
	for i := 1; i < len(changes); i++ {
		if compareEntries(changes[i-1], changes[i]) == 0 {
			return 0, fmt.Errorf("roomserver: state change lists %s %q twice", changes[i].Type, changes[i].StateKey)
		}
	}
	var entries []stateEntry
	hops, size := 0, int64(len(changes))
	if parent != 0 {
		ph, psize, err := snapshotHeader(tx, roomID, parent)
		if err != nil {
			return 0, err
		}
		size = psize + int64(added)
		if ph+1 < maxHops {
			hops, entries = ph+1, changes
		} else {
			full, err := loadSnapshot(tx, roomID, parent)
			if err != nil {
				return 0, err
			}
			entries = mergeEntries(full, changes)
			if int64(len(entries)) != size {
				return 0, fmt.Errorf("%w: snapshot %d plus %d changes has %d entries, expected %d", ErrBrokenState, parent, len(changes), len(entries), size)
			}
			parent = 0
		}
	} else {
		entries = changes
	}
	var id int64
	err := tx.QueryRow(`INSERT INTO rs_snapshots (room_id, parent, hops, size, entries) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		roomID, parent, hops, size, encodeEntries(entries)).Scan(&id)
	return id, err
}

// mergeEntries returns the sorted full state with the sorted changes
// applied.
func mergeEntries(full, changes []stateEntry) []stateEntry {
	out := make([]stateEntry, 0, len(full)+len(changes))
	i, j := 0, 0
	for i < len(full) || j < len(changes) {
		switch {
		case j == len(changes):
			out = append(out, full[i])
			i++
		case i == len(full):
			out = append(out, changes[j])
			j++
		default:
			switch c := compareEntries(full[i], changes[j]); {
			case c < 0:
				out = append(out, full[i])
				i++
			case c > 0:
				out = append(out, changes[j])
				j++
			default:
				out = append(out, changes[j])
				i++
				j++
			}
		}
	}
	return out
}
