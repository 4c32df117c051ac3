package server_test

import (
	"net/url"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// TestDirectoryBadInput drives aliases, the canonical alias check, the
// published directory and the user directory through bad and good input.
func TestDirectoryBadInput(t *testing.T) {
	s := startWithB(t, server.Config{})
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	ok := must[map[string]any](t)
	ok(bob.MustOK("PUT", "/profile/@bob:test.local/displayname", map[string]string{"displayname": "Bobby Tables"}))
	lobby := ok(alice.MustOK("POST", "/createRoom", map[string]any{"visibility": "public", "room_alias_name": "lobby", "name": "The Lobby", "topic": "hello"}))["room_id"].(string)
	private := joinedRoomB(t, alice, carol, map[string]any{"name": "secret"})
	ok(bob.MustOK("POST", path(lobby)+"/join", map[string]any{}))
	anon := client(s)
	// Joining by alias.
	erin := register(t, s, "erin")
	if j := ok(erin.MustOK("POST", "/join/"+url.PathEscape("#lobby:test.local"), map[string]any{})); j["room_id"] != lobby {
		t.Fatalf("join by alias %v", j)
	}
	ok(erin.MustOK("POST", path(lobby)+"/leave", map[string]any{}))

	alias := "/directory/room/" + url.PathEscape("#lobby:test.local")
	if got := ok(anon.MustOK("GET", alias, nil)); got["room_id"] != lobby {
		t.Fatalf("alias %v", got)
	}
	r, err := alice.Do("POST", "/createRoom", map[string]any{"room_alias_name": "lobby"})
	expectB(t, r, err, 400, "M_ROOM_IN_USE")
	r, err = alice.Do("PUT", alias, map[string]any{"room_id": private})
	expectB(t, r, err, 409, "")
	r, err = alice.Do("PUT", "/directory/room/"+url.PathEscape("#x:other.example"), map[string]any{"room_id": private})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	r, err = alice.Do("PUT", "/directory/room/"+url.PathEscape("#nocolon"), map[string]any{"room_id": private})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	r, err = alice.Do("PUT", "/directory/room/"+url.PathEscape("#s:test.local"), map[string]any{"room_id": 7})
	expectB(t, r, err, 400, "M_BAD_JSON")
	r, err = bob.Do("PUT", "/directory/room/"+url.PathEscape("#s:test.local"), map[string]any{"room_id": private})
	expectB(t, r, err, 403, "M_FORBIDDEN") // bob is not in the private room
	ok(alice.MustOK("PUT", "/directory/room/"+url.PathEscape("#s:test.local"), map[string]any{"room_id": private}))
	r, err = bob.Do("DELETE", "/directory/room/"+url.PathEscape("#s:test.local"), nil)
	expectB(t, r, err, 403, "M_FORBIDDEN")
	if a := ok(carol.MustOK("GET", path(private)+"/aliases", nil)); !hasStringB(a["aliases"], "#s:test.local") {
		t.Fatalf("aliases %v", a)
	}
	r, err = bob.Do("GET", path(private)+"/aliases", nil)
	expectB(t, r, err, 403, "M_FORBIDDEN")
	// The canonical alias goes through the state path, checked.
	r, err = alice.Do("PUT", path(private)+"/state/m.room.canonical_alias", map[string]any{"alias": "#lobby:test.local"})
	expectB(t, r, err, 400, "M_BAD_ALIAS")
	r, err = alice.Do("PUT", path(private)+"/state/m.room.canonical_alias", map[string]any{"alias": "#nope:test.local"})
	expectB(t, r, err, 400, "M_BAD_ALIAS")
	r, err = alice.Do("PUT", path(private)+"/state/m.room.canonical_alias", map[string]any{"alt_aliases": []string{"bad"}})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	ok(alice.MustOK("PUT", path(private)+"/state/m.room.canonical_alias", map[string]any{"alias": "#s:test.local"}))
	ok(alice.MustOK("DELETE", "/directory/room/"+url.PathEscape("#s:test.local"), nil))
	r, err = anon.Do("GET", "/directory/room/"+url.PathEscape("#s:test.local"), nil)
	expectB(t, r, err, 404, "M_NOT_FOUND")

	// Published rooms.
	pub := ok(anon.MustOK("GET", "/publicRooms", nil))
	chunk := pub["chunk"].([]any)
	if len(chunk) != 1 {
		t.Fatalf("public rooms %v", pub)
	}
	c := chunk[0].(map[string]any)
	if c["room_id"] != lobby || c["name"] != "The Lobby" || c["canonical_alias"] != "#lobby:test.local" || c["num_joined_members"] != float64(2) || c["join_rule"] != "public" {
		t.Fatalf("chunk %v", c)
	}
	if v := ok(anon.MustOK("GET", "/directory/list/room/"+url.PathEscape(private), nil)); v["visibility"] != "private" {
		t.Fatalf("visibility %v", v)
	}
	r, err = bob.Do("PUT", "/directory/list/room/"+url.PathEscape(private), map[string]any{"visibility": "public"})
	expectB(t, r, err, 403, "M_FORBIDDEN")
	r, err = alice.Do("PUT", "/directory/list/room/"+url.PathEscape(private), map[string]any{"visibility": "everyone"})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	r, err = anon.Do("GET", "/directory/list/room/"+url.PathEscape("!nope:test.local"), nil)
	expectB(t, r, err, 404, "M_NOT_FOUND")
	ok(alice.MustOK("PUT", "/directory/list/room/"+url.PathEscape(private), map[string]any{"visibility": "public"}))
	// Both rooms have two members: the order is by room ID then.
	page := ok(alice.MustOK("POST", "/publicRooms", map[string]any{"limit": 1}))
	if len(page["chunk"].([]any)) != 1 || page["next_batch"] == nil || page["total_room_count_estimate"] != float64(2) {
		t.Fatalf("page 1 %v", page)
	}
	first := page["chunk"].([]any)[0].(map[string]any)["room_id"]
	page = ok(alice.MustOK("POST", "/publicRooms", map[string]any{"limit": 1, "since": page["next_batch"]}))
	if len(page["chunk"].([]any)) != 1 || page["next_batch"] != nil || page["prev_batch"] == nil {
		t.Fatalf("page 2 %v", page)
	}
	if second := page["chunk"].([]any)[0].(map[string]any)["room_id"]; first == second || (first != lobby && first != private) || (second != lobby && second != private) {
		t.Fatalf("pages hold %v and %v", first, second)
	}
	if f := ok(alice.MustOK("POST", "/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "LOBBY"}})); len(f["chunk"].([]any)) != 1 {
		t.Fatalf("search %v", f)
	}
	r, err = alice.Do("POST", "/publicRooms", map[string]any{"since": "zzz"})
	expectB(t, r, err, 400, "M_INVALID_PARAM")
	r, err = alice.Do("POST", "/publicRooms", map[string]any{"limit": "ten"})
	expectB(t, r, err, 400, "M_BAD_JSON")

	// User directory: users sharing a room, or in a room with the public
	// join rule, by user ID or display name.
	res := ok(bob.MustOK("POST", "/user_directory/search", map[string]any{"search_term": "ALI"}))
	if r := res["results"].([]any); len(r) != 1 || r[0].(map[string]any)["user_id"] != alice.UserID {
		t.Fatalf("search %v", res)
	}
	res = ok(carol.MustOK("POST", "/user_directory/search", map[string]any{"search_term": "tables"}))
	if r := res["results"].([]any); len(r) != 1 || r[0].(map[string]any)["display_name"] != "Bobby Tables" {
		t.Fatalf("search by name %v", res)
	}
	res = ok(bob.MustOK("POST", "/user_directory/search", map[string]any{"search_term": "test.local", "limit": 1}))
	if len(res["results"].([]any)) != 1 || res["limited"] != true {
		t.Fatalf("limited %v", res)
	}
	r, err = bob.Do("POST", "/user_directory/search", map[string]any{})
	expectB(t, r, err, 400, "M_MISSING_PARAM")
	dave := register(t, s, "dave")
	// Dave shares no room: he finds bob (in a room with the public join
	// rule) but not carol (only in an invite-only room, even if published).
	res = ok(dave.MustOK("POST", "/user_directory/search", map[string]any{"search_term": "bob"}))
	if len(res["results"].([]any)) != 1 {
		t.Fatalf("bob not found by a stranger: %v", res)
	}

	// Features this server does not have.
	if b := ok(alice.MustOK("GET", "/voip/turnServer", nil)); len(b) != 0 {
		t.Fatalf("turnServer %v", b)
	}
	if b := ok(alice.MustOK("GET", "/thirdparty/protocols", nil)); len(b) != 0 {
		t.Fatalf("protocols %v", b)
	}
	v := &testclient.Client{Base: "http://" + s.ClientAddr(), Prefix: "/_matrix/client"}
	if b := ok(v.MustOK("GET", "/versions", nil)); !hasStringB(b["versions"], "v1.11") || b["unstable_features"] == nil {
		t.Fatalf("versions %v", b)
	}
}
