// Package db opens the homeserver's SQL database (SQLite by default).
package db

import (
	"database/sql"
	"fmt"
	"path/filepath"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// Open opens (creating if needed) the SQLite database in dataDir.
func Open(dataDir string) (*sql.DB, error) {
	path := filepath.Join(dataDir, "homeserver.db")
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	// One connection: SQLite has one writer, and the components' queries
	// are short. This keeps writes from failing with SQLITE_BUSY.
	d.SetMaxOpenConns(1)
	if err := d.Ping(); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: %w", err)
	}
	return d, nil
}
