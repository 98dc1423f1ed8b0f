-- Tasker schema, PostgreSQL 15. Mirrors migrations/sqlite/0001_init.sql: times are
-- epoch milliseconds (BIGINT), JSON is jsonb, UUIDs are uuid (UUIDv7, made in Rust).
--
-- State changes: tasks.state and steps.state are the compare-and-swap targets.
-- Every write that changes `state` also sets the row's transition_* columns; the
-- audit triggers below turn that into append-only rows in task_transitions /
-- step_transitions in the same statement. transition_path (a jsonb array of
-- {"to", "event"} hops) records intermediate states passed through in one write.
-- State names are literals wherever a partial index must match.

CREATE TABLE templates (
    content_hash TEXT PRIMARY KEY,
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    definition   JSONB NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE tasks (
    task_uuid            UUID PRIMARY KEY,
    template_hash        TEXT NOT NULL REFERENCES templates (content_hash),
    namespace            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    version              TEXT NOT NULL,
    state                TEXT NOT NULL CONSTRAINT tasks_state_check CHECK (state IN (
                             'pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
                             'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry',
                             'blocked_by_failures', 'complete', 'error', 'cancelled', 'resolved_manually')),
    context              JSONB NOT NULL,
    identity_hash        TEXT NOT NULL CONSTRAINT tasks_identity_unique UNIQUE,
    correlation_id       UUID NOT NULL,
    priority             INTEGER NOT NULL DEFAULT 0,
    hold_failed          BOOLEAN NOT NULL DEFAULT false,
    step_count           INTEGER NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    completed_at         BIGINT,
    transition_event     TEXT NOT NULL,
    transition_path      JSONB,
    transition_metadata  JSONB,
    transition_processor TEXT
);
CREATE INDEX tasks_created_idx ON tasks (created_at);
CREATE INDEX tasks_state_idx ON tasks (state, created_at);

CREATE TABLE steps (
    step_uuid              UUID PRIMARY KEY,
    task_uuid              UUID NOT NULL REFERENCES tasks (task_uuid),
    namespace              TEXT NOT NULL,
    name                   TEXT NOT NULL,
    template_step_name     TEXT NOT NULL,
    step_type              TEXT NOT NULL,
    handler_callable       TEXT NOT NULL,
    handler_method         TEXT NOT NULL,
    handler_initialization JSONB NOT NULL,
    retry_policy           JSONB NOT NULL,
    max_attempts           INTEGER NOT NULL,
    timeout_ms             BIGINT NOT NULL,
    state                  TEXT NOT NULL CONSTRAINT steps_state_check CHECK (state IN (
                               'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
                               'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete',
                               'error', 'cancelled', 'resolved_manually')),
    attempts               INTEGER NOT NULL DEFAULT 0,
    pending_parents        INTEGER NOT NULL,
    ready_at               BIGINT,
    claim_seq              BIGINT NOT NULL DEFAULT 0,
    claimed_by             TEXT,
    claim_token            UUID,
    result_token           UUID,
    lease_expires_at       BIGINT,
    deadline_at            BIGINT,
    result                 JSONB,
    error                  JSONB,
    checkpoint             JSONB,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    started_at             BIGINT,
    completed_at           BIGINT,
    transition_event       TEXT NOT NULL,
    transition_path        JSONB,
    transition_metadata    JSONB,
    transition_processor   TEXT,
    CONSTRAINT steps_task_name_unique UNIQUE (task_uuid, name)
);
CREATE INDEX steps_ready_idx ON steps (namespace, ready_at) WHERE state IN ('enqueued', 'waiting_for_retry');
CREATE INDEX steps_lease_idx ON steps (lease_expires_at) WHERE state = 'in_progress';
CREATE INDEX steps_task_idx ON steps (task_uuid);

CREATE TABLE step_edges (
    task_uuid        UUID NOT NULL,
    parent_step_uuid UUID NOT NULL REFERENCES steps (step_uuid),
    child_step_uuid  UUID NOT NULL REFERENCES steps (step_uuid),
    PRIMARY KEY (parent_step_uuid, child_step_uuid)
);
CREATE INDEX step_edges_child_idx ON step_edges (child_step_uuid);

CREATE TABLE task_transitions (
    transition_id BIGSERIAL PRIMARY KEY,
    task_uuid     UUID NOT NULL,
    from_state    TEXT,
    to_state      TEXT NOT NULL,
    event         TEXT NOT NULL,
    metadata      JSONB,
    processor     TEXT,
    created_at    BIGINT NOT NULL,
    most_recent   BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX task_transitions_most_recent_unique ON task_transitions (task_uuid) WHERE most_recent;
CREATE INDEX task_transitions_task_idx ON task_transitions (task_uuid, transition_id);

CREATE TABLE step_transitions (
    transition_id BIGSERIAL PRIMARY KEY,
    step_uuid     UUID NOT NULL,
    task_uuid     UUID NOT NULL,
    from_state    TEXT,
    to_state      TEXT NOT NULL,
    event         TEXT NOT NULL,
    metadata      JSONB,
    processor     TEXT,
    created_at    BIGINT NOT NULL,
    most_recent   BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX step_transitions_most_recent_unique ON step_transitions (step_uuid) WHERE most_recent;
CREATE INDEX step_transitions_step_idx ON step_transitions (step_uuid, transition_id);

-- Audit triggers: one row per intermediate hop in transition_path (most_recent =
-- false), then the final row (most_recent = true), after clearing the previous one.
CREATE FUNCTION tasker_audit_task() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev TEXT := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.state END;
    hop JSONB;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.state IS NOT DISTINCT FROM NEW.state AND NEW.transition_path IS NULL THEN
            RETURN NULL;
        END IF;
        UPDATE task_transitions SET most_recent = false WHERE task_uuid = NEW.task_uuid AND most_recent;
    END IF;
    FOR hop IN SELECT value FROM jsonb_array_elements(COALESCE(NEW.transition_path, '[]'::jsonb)) LOOP
        INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
        VALUES (NEW.task_uuid, prev, hop ->> 'to', hop ->> 'event', NEW.transition_metadata,
                NEW.transition_processor, NEW.updated_at, false);
        prev := hop ->> 'to';
    END LOOP;
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    VALUES (NEW.task_uuid, prev, NEW.state, NEW.transition_event, NEW.transition_metadata,
            NEW.transition_processor, NEW.updated_at, true);
    RETURN NULL;
END
$$;

CREATE FUNCTION tasker_audit_step() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev TEXT := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.state END;
    hop JSONB;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.state IS NOT DISTINCT FROM NEW.state AND NEW.transition_path IS NULL THEN
            RETURN NULL;
        END IF;
        UPDATE step_transitions SET most_recent = false WHERE step_uuid = NEW.step_uuid AND most_recent;
    END IF;
    FOR hop IN SELECT value FROM jsonb_array_elements(COALESCE(NEW.transition_path, '[]'::jsonb)) LOOP
        INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
        VALUES (NEW.step_uuid, NEW.task_uuid, prev, hop ->> 'to', hop ->> 'event', NEW.transition_metadata,
                NEW.transition_processor, NEW.updated_at, false);
        prev := hop ->> 'to';
    END LOOP;
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    VALUES (NEW.step_uuid, NEW.task_uuid, prev, NEW.state, NEW.transition_event, NEW.transition_metadata,
            NEW.transition_processor, NEW.updated_at, true);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_audit AFTER INSERT OR UPDATE OF state ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasker_audit_task();
CREATE TRIGGER steps_audit AFTER INSERT OR UPDATE OF state ON steps
    FOR EACH ROW EXECUTE FUNCTION tasker_audit_step();

-- Wake-ups: a step becoming claimable notifies `tasker_ready` with its namespace,
-- delivered when the transaction commits (duplicates in one transaction fold).
CREATE FUNCTION tasker_notify_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'enqueued' AND (TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state) THEN
        PERFORM pg_notify('tasker_ready', NEW.namespace);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER steps_notify_ready AFTER INSERT OR UPDATE OF state ON steps
    FOR EACH ROW EXECUTE FUNCTION tasker_notify_ready();
