package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations[i] takes the schema from version i to version i+1. %[1]s is the
// quoted schema name. Append; never edit a released step.
var migrations = []string{
	`CREATE TABLE %[1]s.jobs (
		network        bytea NOT NULL,
		user_id        bytea NOT NULL,
		state          text NOT NULL CHECK (state IN ('pending', 'leased', 'retrying', 'dead')),
		again          boolean NOT NULL DEFAULT false,
		again_at       timestamptz,
		attempts       integer NOT NULL DEFAULT 0,
		lease_id       bigint NOT NULL DEFAULT 0,
		enqueued_at    timestamptz NOT NULL,
		updated_at     timestamptz NOT NULL,
		due            timestamptz,
		first_error    text NOT NULL DEFAULT '',
		first_error_at timestamptz,
		last_error     text NOT NULL DEFAULT '',
		last_error_at  timestamptz,
		dead_at        timestamptz,
		-- The state the last Enqueue found (NULL after an insert): the
		-- RETURNING of an upsert sees only the new row, and Enqueue reports
		-- whether it coalesced.
		enqueue_found  text,
		PRIMARY KEY (network, user_id),
		CHECK ((state = 'dead') = (due IS NULL))
	);
	CREATE INDEX jobs_due ON %[1]s.jobs (due) WHERE due IS NOT NULL;
	CREATE INDEX jobs_dead ON %[1]s.jobs (network, user_id) WHERE state = 'dead';
	CREATE TABLE %[1]s.last_ping (
		network bytea NOT NULL,
		user_id bytea NOT NULL,
		at      timestamptz NOT NULL,
		PRIMARY KEY (network, user_id)
	);
	CREATE INDEX last_ping_at ON %[1]s.last_ping (at);
	CREATE SEQUENCE %[1]s.lease_ids;
	CREATE FUNCTION %[1]s.notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_notify(TG_TABLE_SCHEMA || '.jobs', '');
		RETURN NULL;
	END $$;
	CREATE TRIGGER jobs_due_insert AFTER INSERT ON %[1]s.jobs
		FOR EACH ROW WHEN (NEW.state IN ('pending', 'retrying'))
		EXECUTE FUNCTION %[1]s.notify_due();
	CREATE TRIGGER jobs_due_update AFTER UPDATE OF state, due ON %[1]s.jobs
		FOR EACH ROW WHEN (NEW.state IN ('pending', 'retrying')
			AND (OLD.state <> NEW.state OR OLD.due IS DISTINCT FROM NEW.due))
		EXECUTE FUNCTION %[1]s.notify_due();`,

	// 2: the closed loop (queue/confirm.go): a ping Livefyre accepted
	// awaits its pull, due at the re-ping deadline.
	`ALTER TABLE %[1]s.jobs DROP CONSTRAINT jobs_state_check;
	ALTER TABLE %[1]s.jobs ADD CONSTRAINT jobs_state_check
		CHECK (state IN ('pending', 'leased', 'retrying', 'dead', 'awaiting'));
	ALTER TABLE %[1]s.jobs
		ADD COLUMN pinged_at     timestamptz,
		ADD COLUMN pulled_at     timestamptz,
		ADD COLUMN repings       integer NOT NULL DEFAULT 0,
		ADD COLUMN pull_error    text NOT NULL DEFAULT '',
		ADD COLUMN pull_error_at timestamptz,
		-- The Queue holding the lease (see Queue.Close), so that a
		-- replica shutting down hands its leases back at once.
		ADD COLUMN leased_by     text;
	-- The fleet-wide rate limit (limit.go): one token bucket per network.
	CREATE TABLE %[1]s.rate_buckets (
		network bytea PRIMARY KEY,
		tokens  double precision NOT NULL,
		at      timestamptz NOT NULL
	);`,

	// 3: one notification for an enqueue statement, not one for each row
	// it inserts: a row trigger costs PostgreSQL more than the insert of
	// its row (BenchmarkPGEnqueue). Updates keep their row trigger, whose
	// WHEN is checked without calling the function.
	`DROP TRIGGER jobs_due_insert ON %[1]s.jobs;
	CREATE FUNCTION %[1]s.notify_inserted_due() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF EXISTS (SELECT FROM inserted WHERE state IN ('pending', 'retrying')) THEN
			PERFORM pg_notify(TG_TABLE_SCHEMA || '.jobs', '');
		END IF;
		RETURN NULL;
	END $$;
	CREATE TRIGGER jobs_due_insert AFTER INSERT ON %[1]s.jobs
		REFERENCING NEW TABLE AS inserted
		FOR EACH STATEMENT EXECUTE FUNCTION %[1]s.notify_inserted_due();`,
}

// SchemaVersion is the schema version this build creates and understands.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew is returned by New when the database's schema was made
// by a newer build.
var ErrSchemaTooNew = errors.New("pgqueue: schema is newer than this build knows")

// migrate creates or upgrades the schema, in one transaction holding an
// advisory lock on the schema's name, so replicas starting at once do it
// once and the others find it done.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		q := pgx.Identifier{schema}.Sanitize()
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('caddy-livefyre schema ' || $1, 0))`, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_version (
			one     boolean PRIMARY KEY DEFAULT true CHECK (one),
			version integer NOT NULL)`); err != nil {
			return err
		}
		var v int
		err := tx.QueryRow(ctx, `SELECT version FROM `+q+`.schema_version`).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			if err := tableCount(ctx, tx, schema, &v); err != nil {
				return err
			}
			if v > 1 { // schema_version itself is one
				return fmt.Errorf("pgqueue: schema %q holds tables but no version row; refusing to use it (choose another schema)", schema)
			}
			v = 0
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_version (version) VALUES (0)`); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: schema %q is at version %d, this build knows up to %d; upgrade caddy-livefyre on this replica", ErrSchemaTooNew, schema, v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v], q)); err != nil {
				return fmt.Errorf("pgqueue: upgrading schema %q to version %d: %w", schema, v+1, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE `+q+`.schema_version SET version = $1`, v)
		return err
	})
}

func tableCount(ctx context.Context, tx pgx.Tx, schema string, n *int) error {
	return tx.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema).Scan(n)
}

// CheckSchema reports whether New accepts s as Options.Schema, so that a
// config can refuse a bad name when it is written rather than at start-up.
func CheckSchema(s string) error { return validSchema(s) }

// validSchema accepts lower-case SQL identifiers short enough that the
// notification channel "<schema>.jobs" fits PostgreSQL's 63-byte names.
func validSchema(s string) error {
	if s == "" || len(s) > 48 {
		return fmt.Errorf("pgqueue: schema name %q: want 1 to 48 characters", s)
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("pgqueue: schema name %q: want lower-case letters, digits and _, not starting with a digit", s)
		}
	}
	if strings.HasPrefix(s, "pg_") {
		return fmt.Errorf("pgqueue: schema name %q: the pg_ prefix is PostgreSQL's", s)
	}
	return nil
}
