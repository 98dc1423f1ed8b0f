-- Apply a batch of results, second half (one round trip), then commit:
--  1. move the touched tasks on, each only from the state its plan expects
--     (compare-and-swap): the TaskFinalizer's plans computed from the first half;
--  2. eager dispatch: claim up to ?6 of the successors the first half enqueued, in
--     the worker's namespaces (none when ?6 is 0), with claim token ?10;
--  3. hydrate the claimed steps, as a claim does.
-- ?1: plans JSON [{task_uuid, expected, state, event, path}]; ?2: now; ?3: processor;
-- ?4: successor step uuids JSON; ?5: namespaces JSON; ?6: limit; ?7: lease end;
-- ?8: worker id; ?9: audit metadata; ?10: claim token
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
RETURNING 'task' AS kind, tasks.task_uuid, tasks.state;

WITH unused_parameters AS (SELECT ?1, ?3)
UPDATE steps
SET state = 'in_progress',
    transition_event = 'start',
    transition_path = NULL,
    transition_metadata = ?9,
    transition_processor = ?8,
    attempts = attempts + 1,
    claim_seq = claim_seq + 1,
    claimed_by = ?8,
    claim_token = ?10,
    lease_expires_at = MIN(?7, ?2 + timeout_ms),
    deadline_at = ?2 + timeout_ms,
    started_at = ?2,
    ready_at = NULL,
    updated_at = ?2
WHERE step_uuid IN (
    SELECT s.step_uuid
    FROM json_each(?4) AS j
    JOIN steps AS s ON s.step_uuid = j.value
    WHERE s.state = 'enqueued'
      AND s.namespace IN (SELECT value FROM json_each(?5))
      AND EXISTS (SELECT 1 FROM tasks AS t WHERE t.task_uuid = s.task_uuid AND t.state = 'steps_in_process')
    ORDER BY s.ready_at
    LIMIT ?6
)
RETURNING 'step' AS kind, step_uuid, task_uuid, claim_seq, name, template_step_name, namespace, step_type,
          handler_callable, handler_method, handler_initialization, retry_policy, timeout_ms, attempts,
          lease_expires_at, deadline_at, checkpoint;

WITH unused_parameters AS (SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
SELECT 'task_context' AS kind, t.task_uuid AS owner, t.name AS name, t.version AS version,
       t.context AS payload, t.correlation_id AS correlation_id, t.namespace AS task_namespace
FROM tasks AS t
WHERE t.task_uuid IN (SELECT s.task_uuid FROM steps AS s WHERE s.claim_token = ?10)
UNION ALL
SELECT 'dep' AS kind, e.child_step_uuid AS owner, p.name AS name, NULL AS version,
       p.result AS payload, NULL AS correlation_id, NULL AS task_namespace
FROM steps AS c
JOIN step_edges AS e ON e.child_step_uuid = c.step_uuid
JOIN steps AS p ON p.step_uuid = e.parent_step_uuid
WHERE c.claim_token = ?10;

COMMIT;
