package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/sender"
)

// queue is a Log and a PositionStore in memory; a homeserver keeps both in
// its database.
type queue struct {
	mu   sync.Mutex
	pdus []sender.PDU
	pos  map[string]sender.Position
}

func (q *queue) Next(_ context.Context, _ string, after uint64, max int) ([]sender.PDU, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []sender.PDU
	for _, p := range q.pdus {
		if p.Pos > after && len(out) < max {
			out = append(out, p)
		}
	}
	return out, nil
}

func (q *queue) Load(_ context.Context, dest string) (sender.Position, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pos[dest], nil
}

func (q *queue) Save(_ context.Context, dest string, p sender.Position) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pos[dest] = p
	return nil
}

// printer stands in for a *federation.Client.
type printer struct{}

func (printer) SendTransaction(_ context.Context, dest, _ string, txn federation.Transaction) (map[string]json.RawMessage, error) {
	fmt.Printf("to %s: %d PDUs, %d EDUs\n", dest, len(txn.PDUs), len(txn.EDUs))
	return map[string]json.RawMessage{}, nil
}

func Example() {
	q := &queue{pos: map[string]sender.Position{}}
	for i := 1; i <= 70; i++ {
		q.pdus = append(q.pdus, sender.PDU{Pos: uint64(i), JSON: json.RawMessage(`{}`)})
	}
	done := make(chan struct{})
	s, err := sender.New(sender.Options{ServerName: "us.example", Transport: printer{}, Log: q, Store: q,
		OnDelivered: func(_, _ string, _ []sender.PDU, _ map[string]json.RawMessage) {
			if q.pos["them.example"].Acked == 70 {
				close(done)
			}
		}})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	_ = s.Notify("them.example")
	<-done
	fmt.Println("acknowledged up to", q.pos["them.example"].Acked)
	// Output:
	// to them.example: 50 PDUs, 0 EDUs
	// to them.example: 20 PDUs, 0 EDUs
	// acknowledged up to 70
}
