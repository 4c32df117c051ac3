package eventauth

import (
	"crypto/ed25519"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// maxThirdPartyKeys bounds the work one invite can cause: the number of
// public keys tried and of signatures examined.
const maxThirdPartyKeys = 16

// checkThirdPartyInvite applies the invite rules for an invite that carries
// content.third_party_invite.
func (c *checker) checkThirdPartyInvite(target string) (rule, error) {
	ev := c.ev
	if membershipOf(c.member(target)) == "ban" {
		return c.reject(rInvite3PBanned, fmt.Sprintf("%s is banned from the room", target))
	}
	signed := gjson.GetBytes(ev.Content(), "third_party_invite.signed")
	if !signed.IsObject() {
		return c.reject(rInvite3PNoSigned, "content.third_party_invite has no signed object")
	}
	mxid, token := signed.Get("mxid"), signed.Get("token")
	if mxid.Type != gjson.String || token.Type != gjson.String {
		return c.reject(rInvite3PSignedFields, "third_party_invite.signed lacks a string mxid or token")
	}
	if mxid.Str != target {
		return c.reject(rInvite3PMXID, fmt.Sprintf(
			"third_party_invite.signed.mxid %q is not the invited user %q", mxid.Str, target))
	}
	tpi := c.stateThirdPartyInvite(token.Str)
	if tpi == nil {
		return c.reject(rInvite3PNoEvent, fmt.Sprintf(
			"the room has no m.room.third_party_invite with token %q", token.Str))
	}
	if tpi.Sender() != c.sender {
		return c.reject(rInvite3PSender, fmt.Sprintf(
			"the third-party invite was made by %s, not by the sender %s", tpi.Sender(), c.sender))
	}
	keys := thirdPartyKeys(tpi.Content())
	if len(keys) == 0 {
		return c.reject(rInvite3POtherwise, "the m.room.third_party_invite event has no usable public key")
	}
	raw := []byte(signed.Raw)
	tried := 0
	verified := false
	signed.Get("signatures").ForEach(func(server, sigs gjson.Result) bool {
		if server.Type != gjson.String || !sigs.IsObject() {
			return true
		}
		sigs.ForEach(func(keyID, sig gjson.Result) bool {
			tried++
			if tried > maxThirdPartyKeys {
				return false
			}
			for _, pub := range keys {
				if signing.VerifyJSON(server.Str, keyID.Str, pub, raw) == nil {
					verified = true
					return false
				}
			}
			return true
		})
		return !verified && tried <= maxThirdPartyKeys
	})
	if verified {
		return rInvite3PSignature, nil
	}
	return c.reject(rInvite3POtherwise,
		"no signature in third_party_invite.signed verifies with a public key of the m.room.third_party_invite event")
}

// thirdPartyKeys returns the decodable ed25519 public keys of an
// m.room.third_party_invite content: public_key and each
// public_keys[].public_key, at most maxThirdPartyKeys.
func thirdPartyKeys(content []byte) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	add := func(r gjson.Result) {
		if r.Type != gjson.String || len(out) >= maxThirdPartyKeys {
			return
		}
		b, err := signing.DecodeBase64(r.Str)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return
		}
		out = append(out, ed25519.PublicKey(b))
	}
	add(gjson.GetBytes(content, "public_key"))
	gjson.GetBytes(content, "public_keys").ForEach(func(_, k gjson.Result) bool {
		add(k.Get("public_key"))
		return len(out) < maxThirdPartyKeys
	})
	return out
}
