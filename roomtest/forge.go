package roomtest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Forgery names a way to spoil an event, for negative tests. Each is
// rejected by the library as its comment says (TestForgeriesRejected).
type Forgery int

const (
	// WrongContentHash: hashes.sha256 does not match the content; the
	// signatures are good. signing.VerifyEvent returns an error wrapping
	// hashing.ErrContentHashMismatch.
	WrongContentHash Forgery = iota + 1
	// BadSignature: the sender's server's signature is corrupted.
	// signing.VerifyEvent: signing.ErrBadSignature.
	BadSignature
	// WrongServerSignature: the event is signed by ForgerServer instead
	// of its sender's server. signing.VerifyEvent:
	// signing.ErrMissingSignature.
	WrongServerSignature
	// ForeignSender: the sender is a user of ForgerServer (the sender's
	// local part there) while the event's origin field names, and only
	// the signature is of, the server of Event.Sender. signing.VerifyEvent:
	// signing.ErrMissingSignature.
	ForeignSender
	// ForeignAuthEvents: auth_events are the selected events of another
	// room (same version, creator and keys). eventauth.CheckAuthEvents
	// with Forged.AuthEvents: eventauth.ErrAuthEvents.
	ForeignAuthEvents
	// DepthOutOfRange: depth is one more than the room version allows
	// (roomversion.Rules.MaxDepth), correctly hashed and signed.
	// event.Parse: event.ErrBadField in room versions 1-5 (depth 2^63);
	// from 6, whose strict canonical JSON stops at 2^53-1, an error
	// wrapping event.ErrBadJSON and canonicaljson.ErrNumberRange.
	DepthOutOfRange
	// TooLarge: the content is padded so that the event exceeds
	// event.MaxSize (65536 bytes), correctly hashed and signed.
	// event.Parse: event.ErrTooLarge.
	TooLarge
)

// Forgeries lists every Forgery.
func Forgeries() []Forgery {
	return []Forgery{WrongContentHash, BadSignature, WrongServerSignature, ForeignSender, ForeignAuthEvents, DepthOutOfRange, TooLarge}
}

var forgeryNames = map[Forgery]string{
	WrongContentHash: "WrongContentHash", BadSignature: "BadSignature", WrongServerSignature: "WrongServerSignature",
	ForeignSender: "ForeignSender", ForeignAuthEvents: "ForeignAuthEvents", DepthOutOfRange: "DepthOutOfRange", TooLarge: "TooLarge",
}

// String returns the forgery's name.
func (f Forgery) String() string {
	if s, ok := forgeryNames[f]; ok {
		return s
	}
	return fmt.Sprintf("Forgery(%d)", int(f))
}

// ForgerServer is the server that forged signatures and senders belong
// to. Its key is in the room's Keyring, so its signatures verify.
const ForgerServer = "forger.test"

// Forged is a spoiled event.
type Forged struct {
	Forgery Forgery
	// JSON is the event. It may not pass event.Parse (DepthOutOfRange,
	// TooLarge).
	JSON []byte
	// AuthEvents are the events its auth_events name: for
	// ForeignAuthEvents those of the other room. Pass them to
	// eventauth.CheckAuthEvents.
	AuthEvents []*event.PDU
}

// Forge builds e as the branch's next event would be, spoiled as f says,
// and returns it without recording it: the room and the branch do not
// change. It fails the test if the event cannot be built.
func (b *Branch) Forge(f Forgery, e Event) *Forged {
	out, err := b.forge(f, e)
	if err != nil {
		fail(b.room.tb, err)
	}
	return out
}

func (b *Branch) forge(f Forgery, e Event) (*Forged, error) {
	r := b.room
	var other *Room
	if f == ForeignAuthEvents {
		var err error
		other, err = Create(Options{Version: r.Rules.ID, Creator: r.creator, Keys: r.Keys})
		if err != nil {
			return nil, err
		}
		if m := other.state.Member(e.Sender); e.Sender != r.creator && (m == nil || m.Membership() != "join") {
			if _, err := other.Branch.Send(Event{Type: "m.room.member", Sender: e.Sender, StateKey: Str(e.Sender),
				Content: map[string]any{"membership": "join"}}); err != nil {
				return nil, err
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	server, err := serverOf(e.Sender)
	if err != nil {
		return nil, err
	}
	authState, authRoom, signer := b.state, r, ""
	if other != nil {
		authState, authRoom = other.state, other
	}
	if f == ForeignSender {
		signer = server
		e.Sender = e.Sender[:strings.IndexByte(e.Sender, ':')+1] + ForgerServer
	}
	ev, err := b.build(e, authState, authRoom, signer)
	if err != nil {
		return nil, err
	}
	out := &Forged{Forgery: f, JSON: ev.JSON()}
	for _, a := range ev.AuthEventIDs() {
		if rec := authRoom.byID[a]; rec != nil {
			out.AuthEvents = append(out.AuthEvents, rec.ev)
		}
	}
	raw := ev.JSON()
	switch f {
	case WrongContentHash:
		h := sha256.Sum256([]byte("roomtest: not the content"))
		if raw, err = sjson.SetBytes(raw, "hashes.sha256", signing.EncodeBase64(h[:])); err == nil {
			raw, err = b.resign(raw, server, false)
		}
	case BadSignature:
		var sigs map[string]map[string]string
		if err = json.Unmarshal([]byte(gjson.GetBytes(raw, "signatures").Raw), &sigs); err != nil {
			break
		}
		for k, s := range sigs[server] {
			sig, err := signing.DecodeBase64(s)
			if err != nil {
				return nil, err
			}
			sig[0] ^= 0x01
			sigs[server][k] = signing.EncodeBase64(sig)
		}
		raw, err = sjson.SetBytes(raw, "signatures", sigs)
	case WrongServerSignature:
		raw, err = b.resign(raw, ForgerServer, true)
	case DepthOutOfRange:
		depth := new(big.Int).Add(big.NewInt(r.Rules.MaxDepth), big.NewInt(1))
		if raw, err = sjson.SetRawBytes(raw, "depth", []byte(depth.String())); err == nil {
			raw, err = b.resign(raw, server, true)
		}
	case TooLarge:
		if raw, err = sjson.SetBytes(raw, `content.org\.roomtest\.padding`, strings.Repeat("x", event.MaxSize)); err == nil {
			raw, err = b.resign(raw, server, true)
		}
	case ForeignSender:
		if raw, err = sjson.SetBytes(raw, "origin", server); err == nil {
			raw, err = b.resign(raw, server, true)
		}
	case ForeignAuthEvents:
	default:
		return nil, fmt.Errorf("roomtest: unknown forgery %d", int(f))
	}
	if err != nil {
		return nil, fmt.Errorf("roomtest: forging %v: %w", f, err)
	}
	out.JSON = raw
	return out, nil
}

// resign drops the signatures (and, if rehash, the content hash) and
// signs raw again as server.
func (b *Branch) resign(raw []byte, server string, rehash bool) ([]byte, error) {
	raw, err := sjson.DeleteBytes(raw, "signatures")
	if err == nil && rehash {
		raw, err = sjson.DeleteBytes(raw, "hashes")
	}
	if err != nil {
		return nil, err
	}
	key := b.room.Keys.Key(server)
	return signing.SignEvent(b.room.Rules, server, key.KeyID(), key.PrivateKey(), raw)
}
