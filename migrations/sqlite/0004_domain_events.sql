-- Durable domain events (ADR 0010). Append-only: rows are inserted in the same
-- transaction as the step result that fires them (or on their own for an explicit
-- publish that names no held step) and never updated. `sequence` is the order of
-- commit: SQLite has one writer, so a consumer that has seen sequence N has seen
-- every row below N.
CREATE TABLE domain_events (
    sequence       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL CONSTRAINT domain_events_event_id_unique UNIQUE,
    name           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    mode           TEXT NOT NULL CONSTRAINT domain_events_mode_check CHECK (mode IN ('durable', 'broadcast')),
    task_uuid      TEXT,
    step_uuid      TEXT,
    step_name      TEXT,
    namespace      TEXT,
    correlation_id TEXT,
    fired_at       INTEGER NOT NULL,
    stored_at      INTEGER NOT NULL
);

-- Polling by sequence uses the primary key; polling one name pattern uses this.
CREATE INDEX domain_events_name_sequence ON domain_events (name, sequence);

CREATE TRIGGER domain_events_append_only BEFORE UPDATE ON domain_events
BEGIN
    SELECT RAISE(ABORT, 'domain_events is append-only');
END;

-- Named consumers and the last sequence each acknowledged: everything after it is
-- delivered again to a consumer of that name (at least once).
CREATE TABLE domain_event_consumers (
    consumer       TEXT PRIMARY KEY,
    acked_sequence INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;
