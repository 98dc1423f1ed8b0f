-- Move tasks on, each only from the state its plan expects (compare-and-swap), and
-- commit the transaction a `_begin` script opened.
-- ?1: JSON array of {task_uuid, expected, state, event, path}; ?2: now; ?3: processor
UPDATE tasks
SET state = p.state,
    transition_event = p.event,
    transition_path = p.path,
    transition_metadata = NULL,
    transition_processor = ?3,
    completed_at = CASE WHEN p.state IN ('complete', 'error', 'cancelled', 'resolved_manually')
                        THEN ?2 ELSE tasks.completed_at END,
    updated_at = ?2
FROM (SELECT x.value ->> '$.task_uuid' AS task_uuid, x.value ->> '$.expected' AS expected,
             x.value ->> '$.state' AS state, x.value ->> '$.event' AS event, x.value ->> '$.path' AS path
      FROM json_each(?1) AS x) AS p
WHERE tasks.task_uuid = p.task_uuid
  AND tasks.state = p.expected
RETURNING tasks.task_uuid, tasks.state;

COMMIT;
