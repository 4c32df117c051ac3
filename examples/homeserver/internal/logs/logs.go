// Package logs starts the event logs: an embedded NATS server with
// JetStream (file store in the data folder) or a connection to an external
// NATS, and the two streams the components talk through.
package logs

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Stream and subject names.
const (
	InputStream   = "ROOMSERVER_INPUT"
	InputSubject  = "roomserver.input"
	OutputStream  = "ROOMSERVER_OUTPUT"
	OutputSubject = "roomserver.output"
)

// Stream is one of the logs besides the room events: ephemeral and
// per-device data (typing, receipts, presence, to-device messages) and
// account data, each written by the client API and read by the sync
// reader.
type Stream struct{ Name, Subject string }

// The logs of data that is not room events.
var (
	Typing      = Stream{"EDU_TYPING", "edu.typing"}
	Receipts    = Stream{"EDU_RECEIPTS", "edu.receipts"}
	Presence    = Stream{"EDU_PRESENCE", "edu.presence"}
	ToDevice    = Stream{"EDU_TO_DEVICE", "edu.todevice"}
	AccountData = Stream{"ACCOUNT_DATA", "accountdata"}
	DeviceLists = Stream{"DEVICE_LISTS", "devicelists"}
)

// Streams lists them.
var Streams = []Stream{Typing, Receipts, Presence, ToDevice, AccountData, DeviceLists}

// Logs holds the NATS connection and, when embedded, the server.
type Logs struct {
	NC *nats.Conn
	JS nats.JetStreamContext
	ns *server.Server
}

// Open connects to url, or when url is empty starts an embedded JetStream
// server storing its files under dataDir/jetstream.
func Open(url, dataDir string) (*Logs, error) {
	l := &Logs{}
	if url == "" {
		opts := &server.Options{
			ServerName: "gomatrixlib-homeserver",
			DontListen: true,
			JetStream:  true,
			StoreDir:   filepath.Join(dataDir, "jetstream"),
			NoSigs:     true,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			return nil, fmt.Errorf("logs: embedded NATS: %w", err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			return nil, errors.New("logs: embedded NATS did not start")
		}
		l.ns = ns
		nc, err := nats.Connect("", nats.InProcessServer(ns))
		if err != nil {
			ns.Shutdown()
			return nil, fmt.Errorf("logs: connecting to embedded NATS: %w", err)
		}
		l.NC = nc
	} else {
		// No reconnect buffer: while the server is unreachable a publish
		// fails at once instead of being sent whenever the connection
		// comes back (after the writer has given up on it); and keep
		// reconnecting for as long as the process runs.
		nc, err := nats.Connect(url, nats.ReconnectBufSize(-1), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("logs: connecting to %s: %w", url, err)
		}
		l.NC = nc
	}
	js, err := l.NC.JetStream()
	if err != nil {
		l.Close()
		return nil, err
	}
	l.JS = js
	configs := []nats.StreamConfig{
		{Name: InputStream, Subjects: []string{InputSubject}, Storage: nats.FileStorage, Duplicates: 10 * time.Minute},
		{Name: OutputStream, Subjects: []string{OutputSubject}, Storage: nats.FileStorage, Duplicates: 10 * time.Minute},
	}
	for _, st := range Streams {
		configs = append(configs, nats.StreamConfig{Name: st.Name, Subjects: []string{st.Subject}, Storage: nats.FileStorage, Duplicates: 10 * time.Minute})
	}
	for _, s := range configs {
		if _, err := js.StreamInfo(s.Name); err == nil {
			continue
		}
		if _, err := js.AddStream(&s); err != nil {
			l.Close()
			return nil, fmt.Errorf("logs: creating stream %s: %w", s.Name, err)
		}
	}
	return l, nil
}

// Close drains the connection and stops an embedded server.
func (l *Logs) Close() {
	if l.NC != nil {
		l.NC.Close()
	}
	if l.ns != nil {
		l.ns.Shutdown()
		l.ns.WaitForShutdown()
	}
}
