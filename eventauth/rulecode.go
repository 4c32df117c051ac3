package eventauth

import (
	"strconv"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// rule identifies one item of the authorization rules independently of the
// room version. Its spec number ("4.3.1") depends on the version, because
// items are added and removed between versions and the list renumbers; see
// [ruleCode].
type rule uint8

const (
	rNone rule = iota

	rCreate
	rCreatePrevEvents
	rCreateRoomIDDomain // v1-11: room_id domain must match sender domain
	rCreateHasRoomID    // v12: create must not have a room_id
	rCreateRoomVersion
	rCreateCreator            // v1-10: content.creator required
	rCreateAdditionalCreators // v12
	rCreateAllow

	rRoomIDFromCreate // v12 rule 2

	rAuthEvents
	rAuthDuplicate
	rAuthNotSelected
	rAuthRejected
	rAuthNoCreate // v1-11
	rAuthRoomID

	rFederate

	rAliases // v1-5
	rAliasesNoStateKey
	rAliasesDomain
	rAliasesAllow

	rMember
	rMemberMalformed
	rMemberAuthorisedVia // v8+
	rMemberAuthorisedViaSignature

	rJoin
	rJoinFirst
	rJoinSenderMismatch
	rJoinBanned
	rJoinInvite
	rJoinRestricted // v8+
	rJoinRestrictedMember
	rJoinRestrictedAuthoriser
	rJoinRestrictedAllow
	rJoinPublic
	rJoinOtherwise

	rInvite
	rInvite3P
	rInvite3PBanned
	rInvite3PNoSigned
	rInvite3PSignedFields
	rInvite3PMXID
	rInvite3PNoEvent
	rInvite3PSender
	rInvite3PSignature
	rInvite3POtherwise
	rInviteSenderNotJoined
	rInviteTarget
	rInviteAllow
	rInviteOtherwise

	rLeave
	rLeaveSelf
	rLeaveSenderNotJoined
	rLeaveBanned
	rLeaveAllow
	rLeaveOtherwise

	rBan
	rBanSenderNotJoined
	rBanAllow
	rBanOtherwise

	rKnock // v7+
	rKnockJoinRule
	rKnockSenderMismatch
	rKnockAllow
	rKnockOtherwise

	rMemberUnknown

	rSenderNotJoined

	rThirdPartyInvite
	rThirdPartyInviteLevel

	rRequiredLevel

	rStateKey

	rPowerLevels
	rPLScalarsInteger // v10+
	rPLMapsInteger    // v10+
	rPLUsers
	rPLCreators // v12
	rPLNoPrevious
	rPLScalars
	rPLScalarsOld
	rPLScalarsNew
	rPLMapsOld
	rPLMapsOldCheck
	rPLMapsNew
	rPLMapsNewCheck
	rPLUsersOld
	rPLUsersOldCheck
	rPLUsersNew
	rPLUsersNewCheck
	rPLAllow

	rRedaction // v1-2
	rRedactionLevel
	rRedactionDomain
	rRedactionOtherwise

	rOtherwise

	numRules
)

// node is one item of the rule list: present in a room version when cond
// (nil: always) holds. kind is the sentinel its rejections wrap; children
// inherit it unless they set their own.
type node struct {
	r    rule
	cond func(roomversion.Rules) bool
	kind error
	kids []node
}

func leaf(r rule) node { return node{r: r} }

func leafIf(r rule, cond func(roomversion.Rules) bool) node { return node{r: r, cond: cond} }

func notRoomIDFromCreate(v roomversion.Rules) bool { return !v.RoomIDFromCreateEvent }
func roomIDFromCreate(v roomversion.Rules) bool    { return v.RoomIDFromCreateEvent }
func creatorRequired(v roomversion.Rules) bool     { return !v.CreatorFromSender }
func privilegedCreators(v roomversion.Rules) bool  { return v.PrivilegedCreators }
func createInAuthEvents(v roomversion.Rules) bool  { return v.CreateEventInAuthEvents }
func specialAliases(v roomversion.Rules) bool      { return v.SpecialCaseAliases }
func restrictedJoins(v roomversion.Rules) bool     { return v.RestrictedJoins }
func knocking(v roomversion.Rules) bool            { return v.Knocking }
func integerLevels(v roomversion.Rules) bool       { return v.IntegerPowerLevels }
func redactionRule(v roomversion.Rules) bool       { return v.RedactionAuthRule }

// ruleTree returns the authorization rules as an ordered tree. Numbering a
// version's rules is walking the tree and counting only the nodes whose
// condition holds for it, which reproduces the spec's numbering for every
// room version (for example member rules are 5.x in 1-5, 4.x in 6-11 and
// 5.x again in 12; v12's rule 3.5 of the source renders as 3.4).
func ruleTree() []node {
	return []node{
		{r: rCreate, kind: ErrCreate, kids: []node{
			leaf(rCreatePrevEvents),
			leafIf(rCreateRoomIDDomain, notRoomIDFromCreate),
			leafIf(rCreateHasRoomID, roomIDFromCreate),
			leaf(rCreateRoomVersion),
			leafIf(rCreateCreator, creatorRequired),
			leafIf(rCreateAdditionalCreators, privilegedCreators),
			leaf(rCreateAllow),
		}},
		{r: rRoomIDFromCreate, cond: roomIDFromCreate, kind: ErrRoomID},
		{r: rAuthEvents, kind: ErrAuthEvents, kids: []node{
			leaf(rAuthDuplicate),
			leaf(rAuthNotSelected),
			leaf(rAuthRejected),
			leafIf(rAuthNoCreate, createInAuthEvents),
			leaf(rAuthRoomID),
		}},
		{r: rFederate, kind: ErrFederate},
		{r: rAliases, cond: specialAliases, kind: ErrAliases, kids: []node{
			leaf(rAliasesNoStateKey),
			leaf(rAliasesDomain),
			leaf(rAliasesAllow),
		}},
		{r: rMember, kind: ErrMembership, kids: []node{
			leaf(rMemberMalformed),
			{r: rMemberAuthorisedVia, cond: restrictedJoins, kind: ErrAuthorisedVia, kids: []node{
				leaf(rMemberAuthorisedViaSignature),
			}},
			{r: rJoin, kind: ErrJoin, kids: []node{
				leaf(rJoinFirst),
				leaf(rJoinSenderMismatch),
				leaf(rJoinBanned),
				leaf(rJoinInvite),
				{r: rJoinRestricted, cond: restrictedJoins, kids: []node{
					leaf(rJoinRestrictedMember),
					leaf(rJoinRestrictedAuthoriser),
					leaf(rJoinRestrictedAllow),
				}},
				leaf(rJoinPublic),
				leaf(rJoinOtherwise),
			}},
			{r: rInvite, kind: ErrInvite, kids: []node{
				{r: rInvite3P, kind: ErrThirdPartyInvite, kids: []node{
					leaf(rInvite3PBanned),
					leaf(rInvite3PNoSigned),
					leaf(rInvite3PSignedFields),
					leaf(rInvite3PMXID),
					leaf(rInvite3PNoEvent),
					leaf(rInvite3PSender),
					leaf(rInvite3PSignature),
					leaf(rInvite3POtherwise),
				}},
				leaf(rInviteSenderNotJoined),
				leaf(rInviteTarget),
				leaf(rInviteAllow),
				leaf(rInviteOtherwise),
			}},
			{r: rLeave, kind: ErrLeave, kids: []node{
				leaf(rLeaveSelf),
				leaf(rLeaveSenderNotJoined),
				leaf(rLeaveBanned),
				leaf(rLeaveAllow),
				leaf(rLeaveOtherwise),
			}},
			{r: rBan, kind: ErrBan, kids: []node{
				leaf(rBanSenderNotJoined),
				leaf(rBanAllow),
				leaf(rBanOtherwise),
			}},
			{r: rKnock, cond: knocking, kind: ErrKnock, kids: []node{
				leaf(rKnockJoinRule),
				leaf(rKnockSenderMismatch),
				leaf(rKnockAllow),
				leaf(rKnockOtherwise),
			}},
			leaf(rMemberUnknown),
		}},
		{r: rSenderNotJoined, kind: ErrNotJoined},
		{r: rThirdPartyInvite, kind: ErrThirdPartyInviteLevel, kids: []node{
			leaf(rThirdPartyInviteLevel),
		}},
		{r: rRequiredLevel, kind: ErrPowerLevel},
		{r: rStateKey, kind: ErrStateKey},
		{r: rPowerLevels, kind: ErrPowerLevels, kids: []node{
			leafIf(rPLScalarsInteger, integerLevels),
			leafIf(rPLMapsInteger, integerLevels),
			leaf(rPLUsers),
			leafIf(rPLCreators, privilegedCreators),
			leaf(rPLNoPrevious),
			{r: rPLScalars, kids: []node{leaf(rPLScalarsOld), leaf(rPLScalarsNew)}},
			{r: rPLMapsOld, kids: []node{leaf(rPLMapsOldCheck)}},
			{r: rPLMapsNew, kids: []node{leaf(rPLMapsNewCheck)}},
			{r: rPLUsersOld, kids: []node{leaf(rPLUsersOldCheck)}},
			{r: rPLUsersNew, kids: []node{leaf(rPLUsersNewCheck)}},
			leaf(rPLAllow),
		}},
		{r: rRedaction, cond: redactionRule, kind: ErrRedaction, kids: []node{
			leaf(rRedactionLevel),
			leaf(rRedactionDomain),
			leaf(rRedactionOtherwise),
		}},
		leaf(rOtherwise),
	}
}

// ruleList is the rule tree. It is built once and only read afterwards.
var ruleList = ruleTree()

// layoutOf returns what decides a room version's rule numbering, the
// switches that add or remove rules, as a bit set.
func layoutOf(v *roomversion.Rules) uint16 {
	var l uint16
	for i, b := range [...]bool{v.RoomIDFromCreateEvent, v.CreatorFromSender, v.PrivilegedCreators,
		v.CreateEventInAuthEvents, v.SpecialCaseAliases, v.RestrictedJoins, v.Knocking,
		v.IntegerPowerLevels, v.RedactionAuthRule} {
		if b {
			l |= 1 << i
		}
	}
	return l
}

type codeTable struct {
	code [numRules]string
	kind [numRules]error
}

// codeTables holds, by layout, the numbering of every layout in the room
// version table, computed once so that naming a rule costs no allocation
// and no hashing. It is only read after initialisation. Rules values
// outside the table fall back to walking the tree.
var codeTables = buildCodeTables()

func buildCodeTables() *[1 << 9]*codeTable {
	out := new([1 << 9]*codeTable)
	for _, v := range roomversion.All() {
		l := layoutOf(&v)
		if out[l] != nil {
			continue
		}
		t := &codeTable{}
		for r := rule(1); r < numRules; r++ {
			t.code[r], t.kind[r], _ = walkCode(v, r)
		}
		out[l] = t
	}
	return out
}

// ruleCode returns the spec's number of r in room version v ("4.3.1"), and
// the sentinel its rejection wraps. ok is false if r does not exist in v.
func ruleCode(v *roomversion.Rules, r rule) (code string, kind error, ok bool) {
	if t := codeTables[layoutOf(v)]; t != nil && r > 0 && r < numRules {
		return t.code[r], t.kind[r], t.code[r] != ""
	}
	return walkCode(*v, r)
}

// walkCode numbers r by walking the rule tree.
func walkCode(v roomversion.Rules, r rule) (code string, kind error, ok bool) {
	var path [6]int
	var kinds [6]error
	var find func(nodes []node, depth int) bool
	find = func(nodes []node, depth int) bool {
		n := 0
		for i := range nodes {
			nd := &nodes[i]
			if nd.cond != nil && !nd.cond(v) {
				continue
			}
			n++
			path[depth] = n
			kinds[depth] = nd.kind
			if nd.r == r {
				for d := depth; d >= 0; d-- {
					if kinds[d] != nil {
						kind = kinds[d]
						break
					}
				}
				b := make([]byte, 0, 12)
				for d := 0; d <= depth; d++ {
					if d > 0 {
						b = append(b, '.')
					}
					b = strconv.AppendInt(b, int64(path[d]), 10)
				}
				code = string(b)
				return true
			}
			if depth+1 < len(path) && find(nd.kids, depth+1) {
				return true
			}
		}
		return false
	}
	ok = find(ruleList, 0)
	return code, kind, ok
}
