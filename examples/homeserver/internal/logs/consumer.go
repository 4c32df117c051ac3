package logs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Consumer reads a stream through a durable pull consumer and hands each
// entry, in log order, to its handler. An entry whose handler returns an
// error is redelivered after a second; the durable consumer means a
// restarted process resumes after the last acknowledged entry.
type Consumer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Consume starts a Consumer named durable on subject of stream, fetching
// up to batch entries at a time.
func Consume(js nats.JetStreamContext, stream, subject, durable string, batch int, log *slog.Logger, handle func(ctx context.Context, data []byte) error) (*Consumer, error) {
	return ConsumeSeq(js, stream, subject, durable, batch, log, func(ctx context.Context, _ uint64, data []byte) error { return handle(ctx, data) })
}

// ConsumeSeq is Consume with each entry's sequence number in the stream.
func ConsumeSeq(js nats.JetStreamContext, stream, subject, durable string, batch int, log *slog.Logger, handle func(ctx context.Context, seq uint64, data []byte) error) (*Consumer, error) {
	sub, err := js.PullSubscribe(subject, durable, nats.BindStream(stream), nats.AckExplicit(), nats.MaxDeliver(-1))
	if err != nil {
		return nil, fmt.Errorf("logs: subscribing %s to %s: %w", durable, stream, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fctx, fcancel := context.WithTimeout(ctx, time.Second)
			msgs, err := sub.Fetch(batch, nats.Context(fctx))
			fcancel()
			if err != nil {
				continue
			}
			for _, m := range msgs {
				var seq uint64
				if md, err := m.Metadata(); err == nil {
					seq = md.Sequence.Stream
				}
				if err := handle(ctx, seq, m.Data); err != nil {
					log.Error("logs: handling an entry failed; it will be redelivered", "consumer", durable, "err", err)
					_ = m.NakWithDelay(time.Second)
					continue
				}
				_ = m.Ack()
			}
		}
	}()
	return c, nil
}

// Stop stops consuming and waits for the entry in hand; entries not yet
// acknowledged stay in the log.
func (c *Consumer) Stop() {
	c.cancel()
	<-c.done
}
