-- Record detections and hold their tasks, in the transaction that locked the tasks
-- (`dlq/lock_tasks.sql`). A step-level detection first moves its step
-- --dead_letter--> error (a compare-and-swap on the state it was read in: a step a
-- worker moved meanwhile is not recorded); each entry is inserted with a snapshot
-- of its task and steps as they were before this statement; the open-entry unique
-- index keeps one open entry per task; the task of each inserted entry moves
-- --dead_letter--> blocked_by_failures unless already held. Both moves write their
-- audit rows here, and a held task NOTIFYs `tasker_task_settled` (ADR 0012).
-- $1: JSON array of detections (see `store::dlq::record_payload`); $2: now; $3: processor
WITH p AS (
    SELECT *
    FROM jsonb_to_recordset($1::jsonb) AS p(entry_id uuid, task_uuid uuid, step_uuid uuid, reason text,
                                            task_state text, stale_state text, stale_since bigint,
                                            stale_for_ms bigint, threshold_ms bigint, step_to text, task_to text,
                                            event text, metadata jsonb, step_error jsonb)
),
moved_steps AS (
    UPDATE steps AS s
    SET state = 'error',
        transition_event = p.event,
        transition_path = NULL,
        transition_metadata = p.metadata,
        transition_processor = $3,
        error = p.step_error,
        lease_expires_at = NULL,
        ready_at = NULL,
        updated_at = $2
    FROM p
    WHERE p.step_to IS NOT NULL
      AND s.step_uuid = p.step_uuid
      AND s.state = p.stale_state
    RETURNING s.step_uuid, s.task_uuid, p.stale_state AS old_state, s.state, s.transition_event,
              s.transition_metadata, s.transition_processor, s.updated_at
),
step_audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT m.step_uuid, m.task_uuid, m.old_state, m.state, m.transition_event, m.transition_metadata,
           m.transition_processor, m.updated_at
    FROM moved_steps AS m
    WHERE m.old_state IS DISTINCT FROM m.state
    ORDER BY m.step_uuid
),
entries AS (
    INSERT INTO dead_letter_entries (entry_id, task_uuid, step_uuid, reason, task_state, stale_state, stale_since,
                                     stale_for_ms, threshold_ms, snapshot, status, detected_by, detected_at)
    SELECT p.entry_id, t.task_uuid, p.step_uuid, p.reason, t.state, p.stale_state, p.stale_since,
           p.stale_for_ms, p.threshold_ms,
           jsonb_build_object(
               'detected_at', $2::bigint,
               'task', jsonb_build_object('task_uuid', t.task_uuid, 'namespace', t.namespace, 'name', t.name,
                                          'version', t.version, 'state', t.state, 'context', t.context,
                                          'correlation_id', t.correlation_id, 'priority', t.priority,
                                          'created_at', t.created_at, 'updated_at', t.updated_at),
               'steps', (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                             'step_uuid', s.step_uuid, 'name', s.name, 'template_step_name', s.template_step_name,
                             'namespace', s.namespace, 'state', s.state,
                             'attempts', s.attempts, 'max_attempts', s.max_attempts, 'handler', s.handler_callable,
                             'pending_parents', s.pending_parents, 'ready_at', s.ready_at,
                             'claimed_by', s.claimed_by, 'lease_expires_at', s.lease_expires_at,
                             'deadline_at', s.deadline_at, 'result', s.result, 'error', s.error,
                             'updated_at', s.updated_at) ORDER BY s.created_at, s.step_uuid), '[]'::jsonb)
                         FROM steps AS s WHERE s.task_uuid = t.task_uuid)),
           'open', $3, $2
    FROM p
    JOIN tasks AS t ON t.task_uuid = p.task_uuid AND t.state = p.task_state
    WHERE p.step_to IS NULL OR p.step_uuid IN (SELECT step_uuid FROM moved_steps)
    ON CONFLICT (task_uuid) WHERE status = 'open' DO NOTHING
    RETURNING entry_id, task_uuid
),
moved_tasks AS (
    UPDATE tasks AS t
    SET state = 'blocked_by_failures',
        transition_event = p.event,
        transition_path = NULL,
        transition_metadata = p.metadata,
        transition_processor = $3,
        updated_at = $2
    FROM p
    JOIN entries AS e ON e.entry_id = p.entry_id
    WHERE p.task_to IS NOT NULL
      AND t.task_uuid = p.task_uuid
      AND t.state = p.task_state
    RETURNING t.task_uuid, p.task_state AS old_state, t.state, t.transition_event, t.transition_metadata,
              t.transition_processor, t.updated_at
),
task_audit AS (
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT m.task_uuid, m.old_state, m.state, m.transition_event, m.transition_metadata, m.transition_processor,
           m.updated_at
    FROM moved_tasks AS m
    WHERE m.old_state IS DISTINCT FROM m.state
    ORDER BY m.task_uuid
),
settled AS (
    SELECT count(pg_notify('tasker_task_settled', m.task_uuid::text)) AS notified
    FROM moved_tasks AS m
    WHERE m.old_state IS DISTINCT FROM m.state
)
SELECT e.entry_id FROM entries AS e CROSS JOIN settled
