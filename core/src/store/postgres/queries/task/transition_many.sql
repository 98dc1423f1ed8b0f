-- Move tasks on, each only from the state its plan expects (compare-and-swap), with
-- their audit rows; a task that settles NOTIFYs `tasker_task_settled` (ADR 0012).
-- $1: plans JSON [{task_uuid, expected, state, event, path}]; $2: now; $3: processor
WITH moved AS (
    UPDATE tasks AS t
    SET state = p.state,
        transition_event = p.event,
        transition_path = p.path::jsonb,
        transition_metadata = NULL,
        transition_processor = $3,
        completed_at = CASE WHEN p.state IN ('complete', 'error', 'cancelled', 'resolved_manually')
                            THEN $2 ELSE t.completed_at END,
        updated_at = $2
    FROM jsonb_to_recordset($1::jsonb) AS p(task_uuid uuid, expected text, state text, event text, path text)
    WHERE t.task_uuid = p.task_uuid
      AND t.state = p.expected
    RETURNING t.task_uuid, p.expected AS old_state, t.state, t.transition_event, t.transition_path,
              t.transition_metadata, t.transition_processor, t.updated_at
),
audit AS (
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT m.task_uuid, h.from_state, h.to_state, h.event, m.transition_metadata, m.transition_processor, m.updated_at
    FROM moved AS m
    CROSS JOIN LATERAL tasker_audit_hops(m.old_state, m.transition_path, m.state, m.transition_event) AS h
    WHERE m.old_state IS DISTINCT FROM m.state OR m.transition_path IS NOT NULL
    ORDER BY m.task_uuid, h.ord
),
settled AS (
    SELECT count(pg_notify('tasker_task_settled', m.task_uuid::text)) AS notified
    FROM moved AS m
    WHERE m.state IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures')
      AND m.old_state IS DISTINCT FROM m.state
)
SELECT 'task' AS kind, jsonb_build_object('task_uuid', m.task_uuid, 'state', m.state) AS data
FROM moved AS m
CROSS JOIN settled
