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

-- The hops one write takes a row through: each intermediate {"to", "event"} of
-- `path`, then the final (state, event); `last` marks the final hop.
CREATE FUNCTION tasker_hops(old_state text, path jsonb, new_state text, new_event text)
RETURNS TABLE (ord bigint, from_state text, to_state text, event text, last boolean)
LANGUAGE sql IMMUTABLE AS $$
    WITH hops AS (
        SELECT p.ord, p.value ->> 'to' AS to_state, p.value ->> 'event' AS event
        FROM jsonb_array_elements(COALESCE(path, '[]'::jsonb)) WITH ORDINALITY AS p(value, ord)
        UNION ALL
        SELECT 1000000, new_state, new_event
    )
    SELECT ord, COALESCE(lag(to_state) OVER (ORDER BY ord), old_state), to_state, event, ord = 1000000
    FROM hops
$$;

-- Audit triggers, set-based: statement-level triggers read the statement's
-- transition tables and write the audit rows of every changed row at once (one
-- row per intermediate hop in transition_path with most_recent = false, then the
-- final row with most_recent = true, after clearing each entity's previous one).
-- A row changes when its state changes or its write carries a path.
CREATE FUNCTION tasker_audit_tasks_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at, h.last
    FROM new_rows AS n
    CROSS JOIN LATERAL tasker_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.task_uuid, h.ord;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasker_audit_tasks_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE task_transitions AS t SET most_recent = false
    FROM new_rows AS n JOIN old_rows AS o ON o.task_uuid = n.task_uuid
    WHERE t.task_uuid = n.task_uuid AND t.most_recent
      AND (o.state IS DISTINCT FROM n.state OR n.transition_path IS NOT NULL);
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at, h.last
    FROM new_rows AS n
    JOIN old_rows AS o ON o.task_uuid = n.task_uuid
    CROSS JOIN LATERAL tasker_hops(o.state, n.transition_path, n.state, n.transition_event) AS h
    WHERE o.state IS DISTINCT FROM n.state OR n.transition_path IS NOT NULL
    ORDER BY n.task_uuid, h.ord;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasker_audit_steps_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT n.step_uuid, n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at, h.last
    FROM new_rows AS n
    CROSS JOIN LATERAL tasker_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.step_uuid, h.ord;
    PERFORM pg_notify('tasker_ready', ns) FROM (SELECT DISTINCT namespace AS ns FROM new_rows WHERE state = 'enqueued') AS r;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasker_audit_steps_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE step_transitions AS t SET most_recent = false
    FROM new_rows AS n JOIN old_rows AS o ON o.step_uuid = n.step_uuid
    WHERE t.step_uuid = n.step_uuid AND t.most_recent
      AND (o.state IS DISTINCT FROM n.state OR n.transition_path IS NOT NULL);
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT n.step_uuid, n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at, h.last
    FROM new_rows AS n
    JOIN old_rows AS o ON o.step_uuid = n.step_uuid
    CROSS JOIN LATERAL tasker_hops(o.state, n.transition_path, n.state, n.transition_event) AS h
    WHERE o.state IS DISTINCT FROM n.state OR n.transition_path IS NOT NULL
    ORDER BY n.step_uuid, h.ord;
    -- Wake-ups: steps that became claimable notify `tasker_ready` with their
    -- namespace, delivered at commit (duplicates in one transaction fold).
    PERFORM pg_notify('tasker_ready', ns)
    FROM (SELECT DISTINCT n.namespace AS ns
          FROM new_rows AS n JOIN old_rows AS o ON o.step_uuid = n.step_uuid
          WHERE n.state = 'enqueued' AND o.state IS DISTINCT FROM 'enqueued') AS r;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_audit_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker_audit_tasks_insert();
CREATE TRIGGER tasks_audit_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker_audit_tasks_update();
CREATE TRIGGER steps_audit_insert AFTER INSERT ON steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker_audit_steps_insert();
CREATE TRIGGER steps_audit_update AFTER UPDATE ON steps
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker_audit_steps_update();
