-- Tasker schema, SQLite. Times are epoch milliseconds (INTEGER); JSON is TEXT;
-- UUIDs are TEXT (UUIDv7, generated in Rust).
--
-- State changes: tasks.state and steps.state are the compare-and-swap targets.
-- Every write that changes `state` also sets the row's transition_* columns; the
-- audit triggers at the end of this file turn that into append-only rows in
-- task_transitions / step_transitions in the same statement, so no code path can
-- change a state without its audit rows. transition_path (a JSON array of
-- {"to", "event"} hops) records intermediate states passed through in one write,
-- e.g. in_progress -> enqueued_for_orchestration -> complete.

-- Templates as they were when a task was created (resolved JSON + content hash).
CREATE TABLE templates (
    content_hash TEXT PRIMARY KEY,
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    definition   TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tasks (
    task_uuid            TEXT PRIMARY KEY,
    template_hash        TEXT NOT NULL REFERENCES templates (content_hash),
    namespace            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    version              TEXT NOT NULL,
    state                TEXT NOT NULL CONSTRAINT tasks_state_check CHECK (state IN (
                             'pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
                             'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry',
                             'blocked_by_failures', 'complete', 'error', 'cancelled', 'resolved_manually')),
    context              TEXT NOT NULL,
    identity_hash        TEXT NOT NULL CONSTRAINT tasks_identity_unique UNIQUE,
    correlation_id       TEXT NOT NULL,
    priority             INTEGER NOT NULL DEFAULT 0,
    hold_failed          INTEGER NOT NULL DEFAULT 0,
    step_count           INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    completed_at         INTEGER,
    transition_event     TEXT NOT NULL,
    transition_path      TEXT,
    transition_metadata  TEXT,
    transition_processor TEXT
);
CREATE INDEX tasks_created_idx ON tasks (created_at);
CREATE INDEX tasks_state_idx ON tasks (state, created_at);

CREATE TABLE steps (
    step_uuid              TEXT PRIMARY KEY,
    task_uuid              TEXT NOT NULL REFERENCES tasks (task_uuid),
    namespace              TEXT NOT NULL,
    name                   TEXT NOT NULL,
    template_step_name     TEXT NOT NULL,
    step_type              TEXT NOT NULL,
    handler_callable       TEXT NOT NULL,
    handler_method         TEXT NOT NULL,
    handler_initialization TEXT NOT NULL,
    retry_policy           TEXT NOT NULL,
    max_attempts           INTEGER NOT NULL,
    timeout_ms             INTEGER NOT NULL,
    state                  TEXT NOT NULL CONSTRAINT steps_state_check CHECK (state IN (
                               'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
                               'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'complete',
                               'error', 'cancelled', 'resolved_manually')),
    attempts               INTEGER NOT NULL DEFAULT 0,
    -- parents not yet complete; the step is enqueued when this reaches 0
    pending_parents        INTEGER NOT NULL,
    -- when an enqueued step became claimable, or when a retry delay ends
    ready_at               INTEGER,
    -- bumped by every claim; a result must carry the claim it belongs to
    claim_seq              INTEGER NOT NULL DEFAULT 0,
    claimed_by             TEXT,
    -- the claim call (a UUID) that last claimed the step, and the result batch that
    -- last wrote it: later statements of the same script find their rows by these
    claim_token            TEXT,
    result_token           TEXT,
    lease_expires_at       INTEGER,
    deadline_at            INTEGER,
    result                 TEXT,
    error                  TEXT,
    checkpoint             TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    started_at             INTEGER,
    completed_at           INTEGER,
    transition_event       TEXT NOT NULL,
    transition_path        TEXT,
    transition_metadata    TEXT,
    transition_processor   TEXT,
    CONSTRAINT steps_task_name_unique UNIQUE (task_uuid, name)
);
-- The claim scans this: only claimable rows are indexed (state literals must match the queries).
CREATE INDEX steps_ready_idx ON steps (namespace, ready_at) WHERE state IN ('enqueued', 'waiting_for_retry');
CREATE INDEX steps_lease_idx ON steps (lease_expires_at) WHERE state = 'in_progress';
CREATE INDEX steps_claim_token_idx ON steps (claim_token);

CREATE TABLE step_edges (
    task_uuid        TEXT NOT NULL,
    parent_step_uuid TEXT NOT NULL REFERENCES steps (step_uuid),
    child_step_uuid  TEXT NOT NULL REFERENCES steps (step_uuid),
    PRIMARY KEY (parent_step_uuid, child_step_uuid)
) WITHOUT ROWID;
CREATE INDEX step_edges_child_idx ON step_edges (child_step_uuid);

CREATE TABLE task_transitions (
    transition_id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_uuid     TEXT NOT NULL,
    from_state    TEXT,
    to_state      TEXT NOT NULL,
    event         TEXT NOT NULL,
    metadata      TEXT,
    processor     TEXT,
    created_at    INTEGER NOT NULL,
    most_recent   INTEGER NOT NULL CHECK (most_recent IN (0, 1))
);
CREATE UNIQUE INDEX task_transitions_most_recent_unique ON task_transitions (task_uuid) WHERE most_recent = 1;
CREATE INDEX task_transitions_task_idx ON task_transitions (task_uuid, transition_id);

CREATE TABLE step_transitions (
    transition_id INTEGER PRIMARY KEY AUTOINCREMENT,
    step_uuid     TEXT NOT NULL,
    task_uuid     TEXT NOT NULL,
    from_state    TEXT,
    to_state      TEXT NOT NULL,
    event         TEXT NOT NULL,
    metadata      TEXT,
    processor     TEXT,
    created_at    INTEGER NOT NULL,
    most_recent   INTEGER NOT NULL CHECK (most_recent IN (0, 1))
);
CREATE UNIQUE INDEX step_transitions_most_recent_unique ON step_transitions (step_uuid) WHERE most_recent = 1;
CREATE INDEX step_transitions_step_idx ON step_transitions (step_uuid, transition_id);

-- Audit triggers. For each write: one row per intermediate hop in transition_path
-- (most_recent = 0), then the final row (most_recent = 1), after clearing the
-- previous most_recent row.
CREATE TRIGGER tasks_audit_insert AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN NULL ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 0
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    VALUES (NEW.task_uuid, json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 1);
END;

CREATE TRIGGER tasks_audit_update AFTER UPDATE OF state ON tasks
WHEN OLD.state IS NOT NEW.state OR NEW.transition_path IS NOT NULL
BEGIN
    UPDATE task_transitions SET most_recent = 0 WHERE task_uuid = NEW.task_uuid AND most_recent = 1;
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN OLD.state ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 0
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    VALUES (NEW.task_uuid, COALESCE(json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), OLD.state), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 1);
END;

CREATE TRIGGER steps_audit_insert AFTER INSERT ON steps
BEGIN
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT NEW.step_uuid, NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN NULL ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 0
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    VALUES (NEW.step_uuid, NEW.task_uuid, json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 1);
END;

CREATE TRIGGER steps_audit_update AFTER UPDATE OF state ON steps
WHEN OLD.state IS NOT NEW.state OR NEW.transition_path IS NOT NULL
BEGIN
    UPDATE step_transitions SET most_recent = 0 WHERE step_uuid = NEW.step_uuid AND most_recent = 1;
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    SELECT NEW.step_uuid, NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN OLD.state ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 0
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at, most_recent)
    VALUES (NEW.step_uuid, NEW.task_uuid, COALESCE(json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), OLD.state), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at, 1);
END;
