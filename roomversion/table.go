package roomversion

// table is the read-only list of room versions, oldest first. Each row after
// the first is built as the previous row plus an explicit diff. It is built
// once, and nothing writes to it afterwards.
var table = buildTable()

func buildTable() []Rules {
	// Room version 1: the original rules.
	v1 := Rules{
		ID:                        "1",
		Stable:                    true,
		EventIDFormat:             EventIDServerGenerated,
		EventReferencesWithHashes: true,
		SignedByEventIDServer:     true,
		StateResolution:           StateResV1,
		MaxDepth:                  1<<63 - 1,
		SpecialCaseAliases:        true,
		RedactionAuthRule:         true,
		CreateEventInAuthEvents:   true,
		Redaction: Redaction{
			topLevel: []string{
				"auth_events", "content", "depth", "event_id", "hashes", "membership",
				"origin", "origin_server_ts", "prev_events", "prev_state", "room_id",
				"sender", "signatures", "state_key", "type",
			},
			content: []contentKeep{
				{eventType: "m.room.member", paths: keys("membership")},
				{eventType: "m.room.create", paths: keys("creator")},
				{eventType: "m.room.join_rules", paths: keys("join_rule")},
				{eventType: "m.room.power_levels", paths: keys(
					"ban", "events", "events_default", "kick", "redact",
					"state_default", "users", "users_default")},
				{eventType: "m.room.aliases", paths: keys("aliases")},
				{eventType: "m.room.history_visibility", paths: keys("history_visibility")},
			},
		},
	}

	// 2: state resolution v2.
	v2 := v1
	v2.ID = "2"
	v2.StateResolution = StateResV2

	// 3: event IDs are reference hashes; redaction checks leave the auth rules.
	v3 := v2
	v3.ID = "3"
	v3.EventIDFormat = EventIDBase64
	v3.EventReferencesWithHashes = false
	v3.SignedByEventIDServer = false
	v3.RedactionAuthRule = false

	// 4: URL-safe event IDs.
	v4 := v3
	v4.ID = "4"
	v4.EventIDFormat = EventIDURLSafeBase64

	// 5: signing key validity is enforced.
	v5 := v4
	v5.ID = "5"
	v5.EnforceKeyValidity = true

	// 6: strict canonical JSON, no aliases special case, notifications
	// power levels; aliases content no longer survives redaction.
	v6 := v5
	v6.ID = "6"
	v6.StrictCanonicalJSON = true
	v6.MaxDepth = 1<<53 - 1
	v6.SpecialCaseAliases = false
	v6.NotificationsPowerLevels = true
	v6.Redaction = v5.Redaction.without("m.room.aliases")

	// 7: knocking.
	v7 := v6
	v7.ID = "7"
	v7.Knocking = true

	// 8: restricted join rules; join rules keep "allow" on redaction.
	v8 := v7
	v8.ID = "8"
	v8.RestrictedJoins = true
	v8.Redaction = v7.Redaction.with("m.room.join_rules", false, keys("join_rule", "allow")...)

	// 9: member events keep join_authorised_via_users_server on redaction.
	v9 := v8
	v9.ID = "9"
	v9.Redaction = v8.Redaction.with("m.room.member", false,
		keys("membership", "join_authorised_via_users_server")...)

	// 10: integer-only power levels, knock_restricted.
	v10 := v9
	v10.ID = "10"
	v10.IntegerPowerLevels = true
	v10.KnockRestricted = true

	// 11: creator is the sender; redacts moves into content; new redaction
	// algorithm.
	v11 := v10
	v11.ID = "11"
	v11.CreatorFromSender = true
	v11.RedactsInContent = true
	v11.Redaction = Redaction{
		topLevel: []string{
			"auth_events", "content", "depth", "event_id", "hashes",
			"origin_server_ts", "prev_events", "room_id", "sender", "signatures",
			"state_key", "type",
		},
		content: v10.Redaction.content,
	}
	v11.Redaction = v11.Redaction.
		with("m.room.create", true).
		with("m.room.member", false, []string{"membership"},
			[]string{"join_authorised_via_users_server"},
			[]string{"third_party_invite", "signed"}).
		with("m.room.power_levels", false, keys(
			"ban", "events", "events_default", "invite", "kick", "redact",
			"state_default", "users", "users_default")...).
		with("m.room.redaction", false, keys("redacts")...)

	// 12: room IDs from the create event, privileged creators, state
	// resolution v2.1.
	v12 := v11
	v12.ID = "12"
	v12.StateResolution = StateResV2_1
	v12.RoomIDFromCreateEvent = true
	v12.CreateEventInAuthEvents = false
	v12.PrivilegedCreators = true
	v12.ExplicitTombstonePowerLevel = true

	return []Rules{v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12}
}
