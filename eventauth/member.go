package eventauth

import (
	"fmt"
)

// checkMember applies the m.room.member rules (rule 5 in room versions
// 1-5 and 12, rule 4 in 6-11).
func (c *checker) checkMember() (rule, error) {
	ev := c.ev
	target, ok := ev.StateKey()
	membership := ev.Membership()
	if !ok || membership == "" {
		return c.reject(rMemberMalformed, "m.room.member event has no state_key or no content.membership")
	}

	if c.v.RestrictedJoins && contentHas(ev.Content(), "join_authorised_via_users_server") {
		via, ok := contentString(ev.Content(), "join_authorised_via_users_server")
		server := domainOf(via)
		if !ok || server == "" {
			return c.reject(rMemberAuthorisedViaSignature,
				"join_authorised_via_users_server is not a user ID, so no server can have signed for it")
		}
		if err := c.signedBy(server); err != nil {
			return c.reject(rMemberAuthorisedViaSignature, fmt.Sprintf(
				"the event is not validly signed by %s, the server of join_authorised_via_users_server %s: %v",
				server, via, err))
		}
	}

	switch membership {
	case "join":
		return c.checkJoin(target)
	case "invite":
		return c.checkInvite(target)
	case "leave":
		return c.checkLeave(target)
	case "ban":
		return c.checkBan(target)
	case "knock":
		if c.v.Knocking {
			return c.checkKnock(target)
		}
	}
	return c.reject(rMemberUnknown, fmt.Sprintf("unknown membership %q", membership))
}

// joinRule returns the room's join rule; a room without an
// m.room.join_rules event is treated as "invite", the spec's default.
func (c *checker) joinRule() string {
	jr := c.stateJoinRules()
	if jr == nil {
		return "invite"
	}
	s, _ := contentString(jr.Content(), "join_rule")
	return s
}

func (c *checker) checkJoin(target string) (rule, error) {
	ev := c.ev
	if prev := ev.PrevEventIDs(); len(prev) == 1 && prev[0] == c.create.EventID() && c.isFirstJoiner(target) {
		return rJoinFirst, nil
	}
	if c.sender != target {
		return c.reject(rJoinSenderMismatch, fmt.Sprintf("%s cannot join on behalf of %s", c.sender, target))
	}
	current := membershipOf(c.member(target))
	if current == "ban" {
		return c.reject(rJoinBanned, fmt.Sprintf("%s is banned from the room", target))
	}
	jr := c.joinRule()
	if jr == "invite" || (c.v.Knocking && jr == "knock") {
		if current == "invite" || current == "join" {
			return rJoinInvite, nil
		}
		return c.reject(rJoinOtherwise, fmt.Sprintf(
			"the join rule is %q and %s is not invited (membership %s)", jr, target, describe(current)))
	}
	if c.v.RestrictedJoins && (jr == "restricted" || (c.v.KnockRestricted && jr == "knock_restricted")) {
		if current == "invite" || current == "join" {
			return rJoinRestrictedMember, nil
		}
		via, ok := contentString(ev.Content(), "join_authorised_via_users_server")
		if !ok {
			return c.reject(rJoinRestrictedAuthoriser, fmt.Sprintf(
				"the join rule is %q and the join names no join_authorised_via_users_server", jr))
		}
		if m := membershipOf(c.member(via)); m != "join" {
			return c.reject(rJoinRestrictedAuthoriser, fmt.Sprintf(
				"the authorising user %s is not joined to the room (membership %s)", via, describe(m)))
		}
		if lvl := c.userLevel(via); lvl < c.pl.invite {
			return c.reject(rJoinRestrictedAuthoriser, fmt.Sprintf(
				"the authorising user %s has power level %s, below the invite level %d",
				via, levelString(lvl), c.pl.invite))
		}
		return rJoinRestrictedAllow, nil
	}
	if jr == "public" {
		return rJoinPublic, nil
	}
	return c.reject(rJoinOtherwise, fmt.Sprintf("the join rule %q does not let %s join", jr, target))
}

func (c *checker) checkInvite(target string) (rule, error) {
	ev := c.ev
	if contentHas(ev.Content(), "third_party_invite") {
		return c.checkThirdPartyInvite(target)
	}
	if m := membershipOf(c.member(c.sender)); m != "join" {
		return c.reject(rInviteSenderNotJoined, fmt.Sprintf(
			"%s is not joined to the room (membership %s) and cannot invite", c.sender, describe(m)))
	}
	if m := membershipOf(c.member(target)); m == "join" || m == "ban" {
		return c.reject(rInviteTarget, fmt.Sprintf("%s cannot be invited: their membership is %q", target, m))
	}
	if lvl := c.userLevel(c.sender); lvl < c.pl.invite {
		return c.reject(rInviteOtherwise, fmt.Sprintf(
			"%s has power level %s, below the invite level %d", c.sender, levelString(lvl), c.pl.invite))
	}
	return rInviteAllow, nil
}

func (c *checker) checkLeave(target string) (rule, error) {
	current := membershipOf(c.member(target))
	if c.sender == target {
		if current == "invite" || current == "join" || (c.v.Knocking && current == "knock") {
			return rLeaveSelf, nil
		}
		return c.reject(rLeaveSelf, fmt.Sprintf(
			"%s cannot leave: their membership is %s", target, describe(current)))
	}
	if m := membershipOf(c.member(c.sender)); m != "join" {
		return c.reject(rLeaveSenderNotJoined, fmt.Sprintf(
			"%s is not joined to the room (membership %s) and cannot kick or unban", c.sender, describe(m)))
	}
	senderLevel := c.userLevel(c.sender)
	if current == "ban" && senderLevel < c.pl.ban {
		return c.reject(rLeaveBanned, fmt.Sprintf(
			"%s is banned and %s has power level %s, below the ban level %d needed to unban",
			target, c.sender, levelString(senderLevel), c.pl.ban))
	}
	targetLevel := c.userLevel(target)
	if senderLevel >= c.pl.kick && targetLevel < senderLevel {
		return rLeaveAllow, nil
	}
	return c.reject(rLeaveOtherwise, fmt.Sprintf(
		"%s (power level %s) cannot kick %s (power level %s): needs the kick level %d and more power than the target",
		c.sender, levelString(senderLevel), target, levelString(targetLevel), c.pl.kick))
}

func (c *checker) checkBan(target string) (rule, error) {
	if m := membershipOf(c.member(c.sender)); m != "join" {
		return c.reject(rBanSenderNotJoined, fmt.Sprintf(
			"%s is not joined to the room (membership %s) and cannot ban", c.sender, describe(m)))
	}
	senderLevel, targetLevel := c.userLevel(c.sender), c.userLevel(target)
	if senderLevel >= c.pl.ban && targetLevel < senderLevel {
		return rBanAllow, nil
	}
	return c.reject(rBanOtherwise, fmt.Sprintf(
		"%s (power level %s) cannot ban %s (power level %s): needs the ban level %d and more power than the target",
		c.sender, levelString(senderLevel), target, levelString(targetLevel), c.pl.ban))
}

func (c *checker) checkKnock(target string) (rule, error) {
	jr := c.joinRule()
	if jr != "knock" && !(c.v.KnockRestricted && jr == "knock_restricted") {
		return c.reject(rKnockJoinRule, fmt.Sprintf("the join rule %q does not allow knocking", jr))
	}
	if c.sender != target {
		return c.reject(rKnockSenderMismatch, fmt.Sprintf("%s cannot knock on behalf of %s", c.sender, target))
	}
	switch m := membershipOf(c.member(c.sender)); m {
	case "ban", "invite", "join":
		return c.reject(rKnockOtherwise, fmt.Sprintf("%s cannot knock: their membership is %q", c.sender, m))
	}
	return rKnockAllow, nil
}
