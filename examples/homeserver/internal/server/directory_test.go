package server_test

import (
	"net/url"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// TestDirectory: aliases (createRoom's room_alias_name, PUT/GET/DELETE,
// joining by alias), the published room directory and the user directory.
func TestDirectory(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	ok := must[map[string]any](t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	ok(bob.MustOK("PUT", "/profile/"+bob.UserID+"/displayname", map[string]string{"displayname": "Bobby Tables"}))
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "visibility": "public",
		"room_alias_name": "lobby", "name": "The Lobby", "topic": "welcome"}))["room_id"].(string)
	alias := "#lobby:test.local"
	anon := &testclient.Client{Base: alice.Base}
	if got := ok(anon.MustOK("GET", "/directory/room/"+url.PathEscape(alias), nil)); got["room_id"] != roomID {
		t.Fatalf("GET alias: %v", got)
	}
	if got := ok(alice.MustOK("GET", "/rooms/"+url.PathEscape(roomID)+"/state/m.room.canonical_alias", nil)); got["alias"] != alias {
		t.Fatalf("canonical alias: %v", got)
	}
	if got := ok(bob.MustOK("POST", "/join/"+url.PathEscape(alias), nil)); got["room_id"] != roomID {
		t.Fatalf("join by alias: %v", got)
	}
	ok(alice.MustOK("PUT", "/directory/room/"+url.PathEscape("#second:test.local"), map[string]string{"room_id": roomID}))
	if got := ok(alice.MustOK("GET", path(roomID)+"/aliases", nil)); jsonString(got["aliases"]) != `["#lobby:test.local","#second:test.local"]` {
		t.Fatalf("aliases: %v", got)
	}
	pr := ok(anon.MustOK("GET", "/publicRooms", nil))
	chunk := pr["chunk"].([]any)
	if len(chunk) != 1 || chunk[0].(map[string]any)["name"] != "The Lobby" || chunk[0].(map[string]any)["num_joined_members"] != float64(2) ||
		chunk[0].(map[string]any)["canonical_alias"] != alias {
		t.Fatalf("publicRooms: %v", pr)
	}
	if got := ok(alice.MustOK("POST", "/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "nothing like it"}})); len(got["chunk"].([]any)) != 0 {
		t.Fatalf("publicRooms search: %v", got)
	}
	if got := ok(anon.MustOK("GET", "/directory/list/room/"+url.PathEscape(roomID), nil)); got["visibility"] != "public" {
		t.Fatalf("visibility: %v", got)
	}
	res := ok(alice.MustOK("POST", "/user_directory/search", map[string]any{"search_term": "bobby"}))
	if jsonString(res) != `{"limited":false,"results":[{"display_name":"Bobby Tables","user_id":"`+bob.UserID+`"}]}` {
		t.Fatalf("user directory: %v", res)
	}
	for _, tc := range []struct {
		c      *testclient.Client
		m, p   string
		body   any
		status int
	}{
		{alice, "PUT", "/directory/room/" + url.PathEscape(alias), map[string]string{"room_id": roomID}, 409},
		{alice, "PUT", "/directory/room/" + url.PathEscape("#x:other.server"), map[string]string{"room_id": roomID}, 400},
		{alice, "PUT", "/directory/room/notanalias", map[string]string{"room_id": roomID}, 400},
		{alice, "PUT", "/directory/room/" + url.PathEscape("#y:test.local"), map[string]string{"room_id": "nope"}, 400},
		{bob, "DELETE", "/directory/room/" + url.PathEscape(alias), nil, 403},
		{anon, "GET", "/directory/room/" + url.PathEscape("#missing:test.local"), nil, 404},
		{alice, "POST", "/createRoom", map[string]any{"room_alias_name": "lobby"}, 400},
		{alice, "POST", "/user_directory/search", map[string]any{}, 400},
		{anon, "GET", "/publicRooms?since=zzz", nil, 400},
	} {
		r := must[*testclient.Response](t)(tc.c.Do(tc.m, tc.p, tc.body))
		if r.Status != tc.status || r.Errcode() == "" {
			t.Errorf("%s %s: %d %s, want %d", tc.m, tc.p, r.Status, r.Raw, tc.status)
		}
	}
	ok(alice.MustOK("DELETE", "/directory/room/"+url.PathEscape(alias), nil))
	if r := must[*testclient.Response](t)(anon.Do("GET", "/directory/room/"+url.PathEscape(alias), nil)); r.Status != 404 {
		t.Fatalf("deleted alias: %d %s", r.Status, r.Raw)
	}
}
