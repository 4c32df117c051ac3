package eventauth

import (
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// ruleOutcomes says whether a deciding rule allows, rejects or both ("allow
// if and only if"). Group headings return false, false.
func ruleOutcomes(r rule) (allowing, rejecting bool) {
	switch r {
	case rCreate, rAuthEvents, rAliases, rMember, rMemberAuthorisedVia, rJoin, rJoinRestricted,
		rInvite, rInvite3P, rLeave, rBan, rKnock, rThirdPartyInvite, rPowerLevels, rPLScalars,
		rPLMapsOld, rPLMapsNew, rPLUsersOld, rPLUsersNew, rRedaction:
		return false, false
	case rCreateAllow, rAliasesAllow, rJoinFirst, rJoinInvite, rJoinRestrictedMember, rJoinRestrictedAllow,
		rJoinPublic, rInvite3PSignature, rInviteAllow, rLeaveAllow, rBanAllow, rKnockAllow, rPLNoPrevious,
		rPLAllow, rRedactionLevel, rRedactionDomain, rOtherwise:
		return true, false
	case rLeaveSelf, rThirdPartyInviteLevel:
		return true, true
	}
	return false, true
}

func isLeafRule(r rule) bool {
	a, b := ruleOutcomes(r)
	return a || b
}

// TestRuleCodes pins the numbering of every rule in the room versions whose
// lists differ, as written in the spec's room version pages (rendered
// numbering: v12's auth events rule written "5." renders as 3.4).
func TestRuleCodes(t *testing.T) {
	want := map[string]map[rule]string{
		"1": {
			rCreatePrevEvents: "1.1", rCreateRoomIDDomain: "1.2", rCreateRoomVersion: "1.3", rCreateCreator: "1.4", rCreateAllow: "1.5",
			rAuthDuplicate: "2.1", rAuthNotSelected: "2.2", rAuthRejected: "2.3", rAuthNoCreate: "2.4", rAuthRoomID: "2.5",
			rFederate: "3", rAliasesNoStateKey: "4.1", rAliasesDomain: "4.2", rAliasesAllow: "4.3",
			rMemberMalformed: "5.1", rJoinFirst: "5.2.1", rJoinSenderMismatch: "5.2.2", rJoinBanned: "5.2.3",
			rJoinInvite: "5.2.4", rJoinPublic: "5.2.5", rJoinOtherwise: "5.2.6",
			rInvite3PBanned: "5.3.1.1", rInvite3PNoSigned: "5.3.1.2", rInvite3PSignedFields: "5.3.1.3", rInvite3PMXID: "5.3.1.4",
			rInvite3PNoEvent: "5.3.1.5", rInvite3PSender: "5.3.1.6", rInvite3PSignature: "5.3.1.7", rInvite3POtherwise: "5.3.1.8",
			rInviteSenderNotJoined: "5.3.2", rInviteTarget: "5.3.3", rInviteAllow: "5.3.4", rInviteOtherwise: "5.3.5",
			rLeaveSelf: "5.4.1", rLeaveSenderNotJoined: "5.4.2", rLeaveBanned: "5.4.3", rLeaveAllow: "5.4.4", rLeaveOtherwise: "5.4.5",
			rBanSenderNotJoined: "5.5.1", rBanAllow: "5.5.2", rBanOtherwise: "5.5.3", rMemberUnknown: "5.6",
			rSenderNotJoined: "6", rThirdPartyInviteLevel: "7.1", rRequiredLevel: "8", rStateKey: "9",
			rPLUsers: "10.1", rPLNoPrevious: "10.2", rPLScalarsOld: "10.3.1", rPLScalarsNew: "10.3.2",
			rPLMapsOldCheck: "10.4.1", rPLMapsNewCheck: "10.5.1", rPLUsersOldCheck: "10.6.1", rPLUsersNewCheck: "10.7.1", rPLAllow: "10.8",
			rRedactionLevel: "11.1", rRedactionDomain: "11.2", rRedactionOtherwise: "11.3", rOtherwise: "12",
		},
		"3": {
			rAliasesAllow: "4.3", rJoinOtherwise: "5.2.6", rPLAllow: "10.8", rOtherwise: "11",
		},
		"6": {
			rCreateCreator: "1.4", rAuthRoomID: "2.5", rFederate: "3", rMemberMalformed: "4.1",
			rJoinFirst: "4.2.1", rJoinInvite: "4.2.4", rJoinPublic: "4.2.5", rJoinOtherwise: "4.2.6",
			rInvite3PSignature: "4.3.1.7", rInviteAllow: "4.3.4", rLeaveSelf: "4.4.1", rLeaveOtherwise: "4.4.5",
			rBanAllow: "4.5.2", rMemberUnknown: "4.6", rSenderNotJoined: "5", rThirdPartyInviteLevel: "6.1",
			rRequiredLevel: "7", rStateKey: "8", rPLUsers: "9.1", rPLNoPrevious: "9.2", rPLScalarsOld: "9.3.1",
			rPLScalarsNew: "9.3.2", rPLMapsOldCheck: "9.4.1", rPLMapsNewCheck: "9.5.1", rPLUsersOldCheck: "9.6.1",
			rPLUsersNewCheck: "9.7.1", rPLAllow: "9.8", rOtherwise: "10",
		},
		"7": {
			rJoinInvite: "4.2.4", rJoinPublic: "4.2.5", rJoinOtherwise: "4.2.6", rBanOtherwise: "4.5.3",
			rKnockJoinRule: "4.6.1", rKnockSenderMismatch: "4.6.2", rKnockAllow: "4.6.3", rKnockOtherwise: "4.6.4",
			rMemberUnknown: "4.7", rSenderNotJoined: "5", rOtherwise: "10",
		},
		"8": {
			rMemberMalformed: "4.1", rMemberAuthorisedViaSignature: "4.2.1",
			rJoinFirst: "4.3.1", rJoinSenderMismatch: "4.3.2", rJoinBanned: "4.3.3", rJoinInvite: "4.3.4",
			rJoinRestrictedMember: "4.3.5.1", rJoinRestrictedAuthoriser: "4.3.5.2", rJoinRestrictedAllow: "4.3.5.3",
			rJoinPublic: "4.3.6", rJoinOtherwise: "4.3.7",
			rInvite3PBanned: "4.4.1.1", rInvite3POtherwise: "4.4.1.8", rInviteSenderNotJoined: "4.4.2", rInviteTarget: "4.4.3",
			rInviteAllow: "4.4.4", rInviteOtherwise: "4.4.5",
			rLeaveSelf: "4.5.1", rLeaveSenderNotJoined: "4.5.2", rLeaveBanned: "4.5.3", rLeaveAllow: "4.5.4", rLeaveOtherwise: "4.5.5",
			rBanSenderNotJoined: "4.6.1", rBanAllow: "4.6.2", rBanOtherwise: "4.6.3",
			rKnockJoinRule: "4.7.1", rKnockSenderMismatch: "4.7.2", rKnockAllow: "4.7.3", rKnockOtherwise: "4.7.4",
			rMemberUnknown: "4.8", rSenderNotJoined: "5", rThirdPartyInviteLevel: "6.1", rRequiredLevel: "7", rStateKey: "8",
			rPLUsers: "9.1", rPLNoPrevious: "9.2", rPLUsersNewCheck: "9.7.1", rPLAllow: "9.8", rOtherwise: "10",
		},
		"10": {
			rCreateCreator: "1.4", rCreateAllow: "1.5", rJoinRestrictedAuthoriser: "4.3.5.2",
			rPLScalarsInteger: "9.1", rPLMapsInteger: "9.2", rPLUsers: "9.3", rPLNoPrevious: "9.4",
			rPLScalarsOld: "9.5.1", rPLScalarsNew: "9.5.2", rPLMapsOldCheck: "9.6.1", rPLMapsNewCheck: "9.7.1",
			rPLUsersOldCheck: "9.8.1", rPLUsersNewCheck: "9.9.1", rPLAllow: "9.10", rOtherwise: "10",
		},
		"11": {
			rCreatePrevEvents: "1.1", rCreateRoomIDDomain: "1.2", rCreateRoomVersion: "1.3", rCreateAllow: "1.4",
			rAuthNoCreate: "2.4", rAuthRoomID: "2.5", rJoinFirst: "4.3.1", rPLAllow: "9.10", rOtherwise: "10",
		},
		"12": {
			rCreatePrevEvents: "1.1", rCreateHasRoomID: "1.2", rCreateRoomVersion: "1.3", rCreateAdditionalCreators: "1.4", rCreateAllow: "1.5",
			rRoomIDFromCreate: "2",
			rAuthDuplicate:    "3.1", rAuthNotSelected: "3.2", rAuthRejected: "3.3", rAuthRoomID: "3.4",
			rFederate: "4", rMemberMalformed: "5.1", rMemberAuthorisedViaSignature: "5.2.1",
			rJoinFirst: "5.3.1", rJoinSenderMismatch: "5.3.2", rJoinBanned: "5.3.3", rJoinInvite: "5.3.4",
			rJoinRestrictedMember: "5.3.5.1", rJoinRestrictedAuthoriser: "5.3.5.2", rJoinRestrictedAllow: "5.3.5.3",
			rJoinPublic: "5.3.6", rJoinOtherwise: "5.3.7",
			rInvite3PBanned: "5.4.1.1", rInvite3PNoSigned: "5.4.1.2", rInvite3PSignedFields: "5.4.1.3", rInvite3PMXID: "5.4.1.4",
			rInvite3PNoEvent: "5.4.1.5", rInvite3PSender: "5.4.1.6", rInvite3PSignature: "5.4.1.7", rInvite3POtherwise: "5.4.1.8",
			rInviteSenderNotJoined: "5.4.2", rInviteTarget: "5.4.3", rInviteAllow: "5.4.4", rInviteOtherwise: "5.4.5",
			rLeaveSelf: "5.5.1", rLeaveSenderNotJoined: "5.5.2", rLeaveBanned: "5.5.3", rLeaveAllow: "5.5.4", rLeaveOtherwise: "5.5.5",
			rBanSenderNotJoined: "5.6.1", rBanAllow: "5.6.2", rBanOtherwise: "5.6.3",
			rKnockJoinRule: "5.7.1", rKnockSenderMismatch: "5.7.2", rKnockAllow: "5.7.3", rKnockOtherwise: "5.7.4",
			rMemberUnknown: "5.8", rSenderNotJoined: "6", rThirdPartyInviteLevel: "7.1", rRequiredLevel: "8", rStateKey: "9",
			rPLScalarsInteger: "10.1", rPLMapsInteger: "10.2", rPLUsers: "10.3", rPLCreators: "10.4", rPLNoPrevious: "10.5",
			rPLScalarsOld: "10.6.1", rPLScalarsNew: "10.6.2", rPLMapsOldCheck: "10.7.1", rPLMapsNewCheck: "10.8.1",
			rPLUsersOldCheck: "10.9.1", rPLUsersNewCheck: "10.10.1", rPLAllow: "10.11", rOtherwise: "11",
		},
	}
	for ver, codes := range want {
		rules, err := roomversion.Get(ver)
		if err != nil {
			t.Fatal(err)
		}
		for r, code := range codes {
			got, _, ok := ruleCode(&rules, r)
			if !ok || got != code {
				t.Errorf("room version %s: rule %d numbered %q (present %v), want %q", ver, r, got, ok, code)
			}
		}
	}
	// A Rules value outside the table (here version 12 with the aliases
	// special case) is numbered by walking the tree.
	custom, err := roomversion.Get("12")
	if err != nil {
		t.Fatal(err)
	}
	custom.SpecialCaseAliases = true
	for r, code := range map[rule]string{rAliasesAllow: "5.3", rJoinPublic: "6.3.6", rOtherwise: "12"} {
		if got, _, ok := ruleCode(&custom, r); !ok || got != code {
			t.Errorf("custom rules: rule %d numbered %q, want %q", r, got, code)
		}
	}
	// Rules that a version does not have.
	absent := map[string][]rule{
		"1":  {rCreateHasRoomID, rCreateAdditionalCreators, rRoomIDFromCreate, rMemberAuthorisedViaSignature, rKnockAllow, rPLScalarsInteger, rPLCreators},
		"3":  {rRedactionLevel},
		"6":  {rAliasesAllow, rKnockAllow, rJoinRestrictedAllow, rRedactionLevel},
		"7":  {rJoinRestrictedAllow, rMemberAuthorisedViaSignature},
		"10": {rPLCreators, rRoomIDFromCreate},
		"11": {rCreateCreator, rCreateHasRoomID},
		"12": {rCreateRoomIDDomain, rCreateCreator, rAuthNoCreate, rAliasesAllow, rRedactionLevel},
	}
	for ver, rs := range absent {
		rules, _ := roomversion.Get(ver)
		for _, r := range rs {
			if code, _, ok := ruleCode(&rules, r); ok {
				t.Errorf("room version %s: rule %d should not exist, numbered %q", ver, r, code)
			}
		}
	}
}

// TestRuleFamilies checks that every rejecting rule of every version has a
// family sentinel and that errors built for it match it.
func TestRuleFamilies(t *testing.T) {
	for _, rules := range roomversion.All() {
		for r := rule(1); r < numRules; r++ {
			_, rejecting := ruleOutcomes(r)
			code, kind, ok := ruleCode(&rules, r)
			if !ok || !rejecting {
				continue
			}
			if kind == nil {
				t.Errorf("room version %s: rule %s has no family", rules.ID, code)
				continue
			}
			err := reject(&rules, r, "test")
			if !errors.Is(err, kind) || !errors.Is(err, ErrRejected) || !errors.Is(err, &Error{Rule: code, RoomVersion: rules.ID}) {
				t.Errorf("room version %s: rule %s error does not match its sentinels", rules.ID, code)
			}
			if errors.Is(err, &Error{Rule: code, RoomVersion: "other"}) {
				t.Errorf("room version %s: rule %s matches another version", rules.ID, code)
			}
			if want := "eventauth: rule " + code + " (room version " + rules.ID + "): test"; err.Error() != want {
				t.Errorf("message %q, want %q", err.Error(), want)
			}
		}
	}
}
