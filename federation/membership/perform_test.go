package membership

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/inbound"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/tidwall/sjson"
)

// resident is a homeserver a.test with one room, serving make_join,
// send_join, make_leave and send_leave over TLS on 127.0.0.1 with the
// resident-side functions of this package.
type resident struct {
	t      *testing.T
	room   *roomtest.Room
	srv    *httptest.Server
	mu     sync.Mutex
	tamper func(answer []byte) []byte
}

// residentRoom is inbound.Room over the resident's room.
type residentRoom struct{ r *roomtest.Room }

func (x residentRoom) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	return x.r.Events(ctx, ids)
}
func (x residentRoom) StateBefore(context.Context, *event.PDU) (eventauth.State, error) {
	return x.r.State(), nil
}
func (x residentRoom) CurrentState(context.Context) (eventauth.State, error) { return x.r.State(), nil }

func writeErr(w http.ResponseWriter, err error) {
	var me *Error
	if !errors.As(err, &me) {
		me = &Error{Status: 500, Errcode: "M_UNKNOWN", Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(me.Status)
	_ = json.NewEncoder(w).Encode(me)
}

func newResident(t *testing.T, version string) *resident {
	room := newRoom(t, version)
	res := &resident{t: t, room: room}
	mux := http.NewServeMux()
	make_ := func(membership string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			origin, _ := federation.OriginFromContext(r.Context())
			res.mu.Lock()
			defer res.mu.Unlock()
			if r.PathValue("room") != room.ID {
				writeErr(w, &Error{Status: 404, Errcode: "M_NOT_FOUND", Message: "unknown room"})
				return
			}
			req := MakeRequest{Origin: origin, UserID: r.PathValue("user"), Membership: membership, Rules: room.Rules}
			if membership == Join {
				req.Versions = r.URL.Query()["ver"]
			}
			if err := CheckMakeRequest(req); err != nil {
				writeErr(w, err)
				return
			}
			tmpl, err := BuildTemplate(TemplateRequest{Rules: room.Rules, RoomID: room.ID, UserID: req.UserID, Membership: membership,
				Origin: "a.test", Prev: []*event.PDU{room.Last()}, State: lookup(room.State())})
			if err != nil {
				writeErr(w, err)
				return
			}
			_ = json.NewEncoder(w).Encode(tmpl)
		}
	}
	send := func(membership string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			origin, _ := federation.OriginFromContext(r.Context())
			body, _ := io.ReadAll(r.Body)
			res.mu.Lock()
			defer res.mu.Unlock()
			ev, err := CheckSignRequest(r.Context(), SignRequest{Rules: room.Rules, Origin: origin, OurServer: "a.test",
				RoomID: r.PathValue("room"), EventID: r.PathValue("event"), Membership: membership, Event: body, Keys: room})
			if err != nil {
				writeErr(w, err)
				return
			}
			c := inbound.Checker{Keys: room}
			if v := c.Authorize(r.Context(), residentRoom{room}, ev); v.Outcome != inbound.Accepted {
				writeErr(w, &Error{Status: 403, Errcode: "M_FORBIDDEN", Message: v.Err.Error()})
				return
			}
			signed, err := Countersign(ev, "a.test", room.Keys.Key("a.test"))
			if err != nil {
				writeErr(w, err)
				return
			}
			var state, chain []json.RawMessage
			for _, e := range room.State() {
				state = append(state, e.JSON())
			}
			for _, e := range room.All() {
				chain = append(chain, e.JSON())
			}
			if err := room.Receive(signed); err != nil {
				writeErr(w, &Error{Status: 403, Errcode: "M_FORBIDDEN", Message: err.Error()})
				return
			}
			if membership == Leave {
				fmt.Fprint(w, `{}`)
				return
			}
			answer, _ := json.Marshal(map[string]any{"state": state, "auth_chain": chain, "event": json.RawMessage(signed.JSON())})
			if res.tamper != nil {
				answer = res.tamper(answer)
			}
			_, _ = w.Write(answer)
		}
	}
	mux.HandleFunc("GET /_matrix/federation/v1/make_join/{room}/{user}", make_(Join))
	mux.HandleFunc("GET /_matrix/federation/v1/make_leave/{room}/{user}", make_(Leave))
	mux.HandleFunc("PUT /_matrix/federation/v2/send_join/{room}/{event}", send(Join))
	mux.HandleFunc("PUT /_matrix/federation/v2/send_leave/{room}/{event}", send(Leave))
	auth := &federation.Authenticator{ServerName: "a.test", Keys: room, Logger: slog.New(slog.DiscardHandler)}
	res.srv = httptest.NewTLSServer(auth.Wrap(mux))
	t.Cleanup(res.srv.Close)
	return res
}

// router sends matrix-federation://name requests to 127.0.0.1 servers.
type router map[string]string

func (r router) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, ok := r[req.URL.Host]
	if !ok {
		return nil, fmt.Errorf("unknown destination %s", req.URL.Host)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "https", addr, req.URL.Host
	return (&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}).RoundTrip(out)
}

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func bobClient(t *testing.T, res *resident) *federation.Client {
	rt := router{"a.test": res.srv.Listener.Addr().String(), "down.test": closedAddr(t)}
	return &federation.Client{ServerName: "b.test", Key: res.room.Keys.Key("b.test"), HTTPClient: &http.Client{Transport: rt, Timeout: 10 * time.Second}}
}

// TestPerformJoinAndLeave joins over TLS through a down server and the
// resident, then leaves through make_leave/send_leave.
func TestPerformJoinAndLeave(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"1", "10", "12"} {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			res := newResident(t, v)
			client := bobClient(t, res)
			ctx := context.Background()
			j, err := PerformJoin(ctx, JoinRequest{Client: client, Servers: []string{"down.test", "a.test"}, RoomID: res.room.ID,
				UserID: bob, ServerName: "b.test", Key: res.room.Keys.Key("b.test"), Keys: res.room})
			if err != nil {
				t.Fatal(err)
			}
			if j.Server != "a.test" || j.Rules.ID != v || j.State.Member(alice) == nil || len(j.Dropped) != 0 {
				t.Fatalf("joined via %s, version %s, state %d, dropped %v", j.Server, j.Rules.ID, len(j.State), j.Dropped)
			}
			if m := res.room.State().Member(bob); m == nil || m.Membership() != Join || m.EventID() != j.Join.EventID() {
				t.Fatal("the resident did not store bob's join")
			}
			leave, err := PerformLeave(ctx, LeaveRequest{Client: client, Servers: []string{"a.test"}, RoomID: res.room.ID,
				UserID: bob, ServerName: "b.test", Key: res.room.Keys.Key("b.test")})
			if err != nil {
				t.Fatal(err)
			}
			if m := res.room.State().Member(bob); m == nil || m.EventID() != leave.EventID() || m.Membership() != Leave {
				t.Fatal("the resident did not store bob's leave")
			}
		})
	}
}

func TestPerformJoinRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A version 12 room and a joiner that knows 1-11: the resident
	// answers M_INCOMPATIBLE_ROOM_VERSION, which ends the attempt.
	res := newResident(t, "12")
	client := bobClient(t, res)
	req := JoinRequest{Client: client, Servers: []string{"a.test", "down.test"}, RoomID: res.room.ID,
		UserID: bob, ServerName: "b.test", Key: res.room.Keys.Key("b.test"), Keys: res.room,
		Supported: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}}
	_, err := PerformJoin(ctx, req)
	var fe *federation.Error
	if !errors.As(err, &fe) || fe.Status != 400 || fe.Errcode != "M_INCOMPATIBLE_ROOM_VERSION" {
		t.Fatalf("incompatible: %v", err)
	}
	// A resident whose answer's state is forged: refused.
	res = newResident(t, "10")
	res.tamper = func(answer []byte) []byte {
		out, _ := sjson.SetBytes(answer, "state.0.signatures.a\\.test."+roomtest.KeyID, "AAAA")
		out, _ = sjson.SetBytes(out, "auth_chain", []any{})
		return out
	}
	req.Client, req.Supported, req.RoomID, req.Servers, req.Keys, req.Key = bobClient(t, res), nil, res.room.ID, []string{"a.test"}, res.room, res.room.Keys.Key("b.test")
	if _, err := PerformJoin(ctx, req); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("forged answer: %v", err)
	}
	// A user of another server than the requester: 403 from make_join.
	req.UserID = "@carol:c.test"
	res.tamper = nil
	if _, err := PerformJoin(ctx, req); !errors.As(err, &fe) || fe.Status != 403 {
		t.Fatalf("other user: %v", err)
	}
	// No servers.
	req.Servers = nil
	if _, err := PerformJoin(ctx, req); err == nil {
		t.Fatal("joined through no server")
	}
}
