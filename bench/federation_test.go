//go:build !goexperiment.jsonv2

package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

var txnBody = []byte(`{"origin":"origin.example","origin_server_ts":1700000000000,"pdus":[],"edus":[{"edu_type":"m.typing","content":{"room_id":"!r:origin.example","user_id":"@a:origin.example","typing":true}}]}`)

const txnURI = "/_matrix/federation/v1/send/1700000000000"

// gmslFixedVerifier verifies with one key for any server.
type gmslFixedVerifier struct{ pub ed25519.PublicKey }

func (v gmslFixedVerifier) VerifyJSONs(_ context.Context, reqs []gomatrixserverlib.VerifyJSONRequest) ([]gomatrixserverlib.VerifyJSONResult, error) {
	out := make([]gomatrixserverlib.VerifyJSONResult, len(reqs))
	for i, r := range reqs {
		out[i].Error = gomatrixserverlib.VerifyJSON(string(r.ServerName), "ed25519:a_1", v.pub, r.Message)
	}
	return out, nil
}

// BenchmarkSignVerifyRequest signs a federation request and verifies it:
// ours with SignRequest + VerifyRequest, gomatrixserverlib with
// FederationRequest.Sign + HTTPRequest + VerifyHTTPRequest.
func BenchmarkSignVerifyRequest(b *testing.B) {
	benchEvents(b)
	priv, pub := benchKey.PrivateKey(), benchKey.Public()
	keys := fixedKey{pub}
	now := time.Now()
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h, err := federation.SignRequest("origin.example", "dest.example", "ed25519:a_1", priv, "PUT", txnURI, txnBody)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := federation.VerifyRequest(context.Background(), keys, "dest.example", now, "PUT", txnURI, []string{h}, txnBody); err != nil {
				b.Fatal(err)
			}
		}
	})
	gv := gmslFixedVerifier{pub}
	b.Run("gmsl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := fclient.NewFederationRequest("PUT", "origin.example", "dest.example", txnURI)
			if err := r.SetContent(json.RawMessage(txnBody)); err != nil {
				b.Fatal(err)
			}
			if err := r.Sign("origin.example", "ed25519:a_1", priv); err != nil {
				b.Fatal(err)
			}
			hr, err := r.HTTPRequest()
			if err != nil {
				b.Fatal(err)
			}
			hr.RequestURI = txnURI
			if _, resp := fclient.VerifyHTTPRequest(hr, now, spec.ServerName("dest.example"), nil, gv); resp.Code != 0 && resp.Code != http.StatusOK {
				b.Fatalf("gmsl verify: %d %v", resp.Code, resp.JSON)
			}
		}
	})
}
