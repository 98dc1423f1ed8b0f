-- Durable domain events (ADR 0010). Append-only: rows are inserted in the same
-- transaction as the step result that fires them (or on their own for an explicit
-- publish that names no held step) and never updated. `sequence` must follow
-- commit order, or a consumer could move past a row that commits later: every
-- insert first takes the transaction-level advisory lock
-- `tasker_domain_events` (see the store), held until commit.
CREATE TABLE domain_events (
    sequence       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       UUID NOT NULL CONSTRAINT domain_events_event_id_unique UNIQUE,
    name           TEXT NOT NULL,
    payload        JSONB NOT NULL,
    mode           TEXT NOT NULL CONSTRAINT domain_events_mode_check CHECK (mode IN ('durable', 'broadcast')),
    task_uuid      UUID,
    step_uuid      UUID,
    step_name      TEXT,
    namespace      TEXT,
    correlation_id UUID,
    fired_at       BIGINT NOT NULL,
    stored_at      BIGINT NOT NULL
);

-- Polling by sequence uses the primary key; polling one name pattern uses this.
CREATE INDEX domain_events_name_sequence ON domain_events (name, sequence);

CREATE FUNCTION tasker_domain_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'domain_events is append-only';
END
$$;

CREATE TRIGGER domain_events_append_only BEFORE UPDATE ON domain_events
    FOR EACH STATEMENT EXECUTE FUNCTION tasker_domain_events_append_only();

-- Subscribers in other processes wake up at commit (LISTEN tasker_domain_events).
CREATE FUNCTION tasker_domain_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tasker_domain_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER domain_events_notify AFTER INSERT ON domain_events
    FOR EACH STATEMENT EXECUTE FUNCTION tasker_domain_events_notify();

-- Named consumers and the last sequence each acknowledged: everything after it is
-- delivered again to a consumer of that name (at least once).
CREATE TABLE domain_event_consumers (
    consumer       TEXT PRIMARY KEY,
    acked_sequence BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL
);
