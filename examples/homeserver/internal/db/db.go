// Package db opens the homeserver's SQL database: SQLite in the data
// folder by default, or PostgreSQL given a DSN. Components write their SQL
// once, with "?" placeholders and the syntax both databases share; DB and
// Tx rewrite placeholders (and the few schema words that differ) for
// PostgreSQL.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, "pgx"
	_ "modernc.org/sqlite"             // the pure-Go SQLite driver
)

// DB is a database handle that speaks both dialects.
type DB struct {
	*sql.DB
	// Postgres is true for PostgreSQL, false for SQLite.
	Postgres bool
}

// Open opens PostgreSQL when postgresDSN is set, else (creating if needed)
// the SQLite database in dataDir.
func Open(dataDir, postgresDSN string) (*DB, error) {
	if postgresDSN != "" {
		d, err := sql.Open("pgx", postgresDSN)
		if err != nil {
			return nil, fmt.Errorf("db: %w", err)
		}
		d.SetMaxOpenConns(16)
		if err := d.Ping(); err != nil {
			d.Close()
			return nil, fmt.Errorf("db: connecting to PostgreSQL: %w", err)
		}
		return &DB{DB: d, Postgres: true}, nil
	}
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
	return &DB{DB: d}, nil
}

// Rebind rewrites a statement for the database: for PostgreSQL, "?"
// placeholders become $1, $2, ..., SQLite's auto-increment key becomes
// BIGSERIAL and the BLOB type BYTEA. Statements must not contain "?" (or
// " BLOB") inside string literals.
func (d *DB) Rebind(q string) string {
	if !d.Postgres {
		return q
	}
	q = strings.ReplaceAll(q, "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
	q = strings.ReplaceAll(q, " BLOB", " BYTEA")
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Exec runs a statement.
func (d *DB) Exec(q string, args ...any) (sql.Result, error) { return d.DB.Exec(d.Rebind(q), args...) }

// ExecContext runs a statement.
func (d *DB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.Rebind(q), args...)
}

// Query runs a query.
func (d *DB) Query(q string, args ...any) (*sql.Rows, error) { return d.DB.Query(d.Rebind(q), args...) }

// QueryContext runs a query.
func (d *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.Rebind(q), args...)
}

// QueryRow runs a query for one row.
func (d *DB) QueryRow(q string, args ...any) *sql.Row { return d.DB.QueryRow(d.Rebind(q), args...) }

// QueryRowContext runs a query for one row.
func (d *DB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.Rebind(q), args...)
}

// Begin starts a transaction.
func (d *DB) Begin() (*Tx, error) {
	tx, err := d.DB.Begin()
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, d: d}, nil
}

// Tx is a transaction that rewrites statements like DB.
type Tx struct {
	*sql.Tx
	d *DB
}

// Exec runs a statement in the transaction.
func (t *Tx) Exec(q string, args ...any) (sql.Result, error) {
	return t.Tx.Exec(t.d.Rebind(q), args...)
}

// QueryRow runs a query for one row in the transaction.
func (t *Tx) QueryRow(q string, args ...any) *sql.Row { return t.Tx.QueryRow(t.d.Rebind(q), args...) }

// Query runs a query in the transaction.
func (t *Tx) Query(q string, args ...any) (*sql.Rows, error) {
	return t.Tx.Query(t.d.Rebind(q), args...)
}

// Strings reads the one string column of a query's rows, as in
// db.Strings(d.Query(...)); the rows are closed. The result is never nil.
func Strings(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
