-- Move tasks on, each only from the state its plan expects (compare-and-swap).
-- $1: plans JSON [{task_uuid, expected, state, event, path}]; $2: now; $3: processor
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
RETURNING 'task' AS kind, jsonb_build_object('task_uuid', t.task_uuid, 'state', t.state) AS data
