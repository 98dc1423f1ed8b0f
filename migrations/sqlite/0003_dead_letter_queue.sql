-- The dead-letter queue: tasks (and the step that held them up) that the staleness
-- sweep found stuck, kept for an operator to investigate and resolve.
--
-- One row per detection. `status` is 'open' until an operator resolves it (a
-- compare-and-swap on status = 'open'), or until the sweep finds its task finished
-- without one (resolution 'task_finished': a held task whose running steps still
-- answered and completed it, or a task cancelled meanwhile); at most one open entry per task (the
-- partial unique index), so sweeps running at once, in one process or several,
-- record a stuck task once. Resolved entries stay as history.
CREATE TABLE dead_letter_entries (
    entry_id         TEXT PRIMARY KEY,
    task_uuid        TEXT NOT NULL REFERENCES tasks (task_uuid),
    -- the stuck step, for a step-level reason; NULL when the task itself was stuck
    step_uuid        TEXT REFERENCES steps (step_uuid),
    reason           TEXT NOT NULL CONSTRAINT dead_letter_entries_reason_check CHECK (reason IN (
                         'step_enqueued_too_long', 'step_lease_lost', 'waiting_for_dependencies_too_long',
                         'waiting_for_retry_too_long', 'steps_in_process_too_long', 'blocked_too_long',
                         'error_unresolved', 'max_lifetime_exceeded')),
    -- the task's state at detection, and the state that was stale (the step's for a
    -- step-level reason, else the task's), since when and for how long
    task_state       TEXT NOT NULL,
    stale_state      TEXT NOT NULL,
    stale_since      INTEGER NOT NULL,
    stale_for_ms     INTEGER NOT NULL,
    threshold_ms     INTEGER NOT NULL,
    -- the task with its steps as they were when the entry was recorded (JSON)
    snapshot         TEXT NOT NULL,
    status           TEXT NOT NULL CONSTRAINT dead_letter_entries_status_check CHECK (status IN ('open', 'resolved')),
    resolution       TEXT CONSTRAINT dead_letter_entries_resolution_check CHECK (resolution IN (
                         'retry_step', 'resolve_step', 'complete_step', 'task_finished')),
    resolution_step_uuid TEXT,
    resolution_note  TEXT,
    resolved_by      TEXT,
    detected_by      TEXT,
    detected_at      INTEGER NOT NULL,
    resolved_at      INTEGER
);
CREATE UNIQUE INDEX dead_letter_entries_open_task_unique ON dead_letter_entries (task_uuid) WHERE status = 'open';
CREATE INDEX dead_letter_entries_status_idx ON dead_letter_entries (status, detected_at);

-- Each entry as the JSON object the store reads, with its task's namespace and name
-- (one definition for every query that returns entries).
CREATE VIEW dead_letter_entry_json AS
SELECT d.entry_id, d.status, d.reason, t.namespace, d.detected_at,
       json_object(
           'entry_id', d.entry_id, 'task_uuid', d.task_uuid, 'namespace', t.namespace, 'task_name', t.name,
           'step_uuid', d.step_uuid, 'reason', d.reason, 'task_state', d.task_state, 'stale_state', d.stale_state,
           'stale_since', d.stale_since, 'stale_for_ms', d.stale_for_ms, 'threshold_ms', d.threshold_ms,
           'snapshot', json(d.snapshot), 'status', d.status, 'resolution', d.resolution,
           'resolution_step_uuid', d.resolution_step_uuid, 'resolution_note', d.resolution_note,
           'resolved_by', d.resolved_by, 'detected_by', d.detected_by, 'detected_at', d.detected_at,
           'resolved_at', d.resolved_at) AS data
FROM dead_letter_entries AS d
JOIN tasks AS t ON t.task_uuid = d.task_uuid;
