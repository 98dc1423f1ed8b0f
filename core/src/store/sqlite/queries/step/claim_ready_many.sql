-- Claim up to ?3 ready steps of namespace ?1, in ONE round trip (a script run as a
-- single transaction):
--  1. claim: enqueued steps, and steps whose retry delay has passed (those pass
--     through pending and enqueued, as ?7 records), never steps of tasks that are
--     no longer running; each claimed row gets claim token ?8;
--  2. tasks resting in waiting_for_retry whose retried steps were claimed run again;
--  3. hydrate: the claimed steps' tasks (kind 'task') and parents' results (kind 'dep').
-- ?1: namespace; ?2: now; ?3: limit; ?4: lease end; ?5: worker id; ?6: audit metadata;
-- ?7: transition path for retried steps; ?8: claim token; ?9: task path; ?10: task event
BEGIN IMMEDIATE;

UPDATE steps
SET state = 'in_progress',
    transition_event = 'start',
    transition_path = CASE WHEN state = 'waiting_for_retry' THEN ?7 END,
    transition_metadata = ?6,
    transition_processor = ?5,
    attempts = attempts + 1,
    claim_seq = claim_seq + 1,
    claimed_by = ?5,
    claim_token = ?8,
    lease_expires_at = MIN(?4, ?2 + timeout_ms),
    deadline_at = ?2 + timeout_ms,
    started_at = ?2,
    ready_at = NULL,
    updated_at = ?2
WHERE step_uuid IN (
    SELECT s.step_uuid
    FROM steps AS s
    WHERE s.namespace = ?1
      AND s.state IN ('enqueued', 'waiting_for_retry')
      AND s.ready_at <= ?2
      AND EXISTS (SELECT 1 FROM tasks AS t
                  WHERE t.task_uuid = s.task_uuid
                    AND t.state IN ('steps_in_process', 'waiting_for_retry', 'evaluating_results', 'enqueuing_steps'))
    ORDER BY s.ready_at
    LIMIT ?3
)
RETURNING 'step' AS kind, step_uuid, task_uuid, claim_seq, name, template_step_name, namespace, step_type,
          handler_callable, handler_method, handler_initialization, retry_policy, timeout_ms, attempts,
          lease_expires_at, deadline_at, checkpoint;

WITH unused_parameters AS (SELECT ?1, ?3, ?4, ?6, ?7)
UPDATE tasks
SET state = 'steps_in_process',
    transition_event = ?10,
    transition_path = ?9,
    transition_metadata = NULL,
    transition_processor = ?5,
    updated_at = ?2
WHERE state = 'waiting_for_retry'
  AND task_uuid IN (SELECT s.task_uuid FROM steps AS s
                    WHERE s.claim_token = ?8 AND s.transition_path IS NOT NULL);

WITH unused_parameters AS (SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7)
SELECT 'task_context' AS kind, t.task_uuid AS owner, t.name AS name, t.version AS version,
       t.context AS payload, t.correlation_id AS correlation_id, t.namespace AS task_namespace
FROM tasks AS t
WHERE t.task_uuid IN (SELECT s.task_uuid FROM steps AS s WHERE s.claim_token = ?8)
UNION ALL
SELECT 'dep' AS kind, e.child_step_uuid AS owner, p.name AS name, NULL AS version,
       p.result AS payload, NULL AS correlation_id, NULL AS task_namespace
FROM steps AS c
JOIN step_edges AS e ON e.child_step_uuid = c.step_uuid
JOIN steps AS p ON p.step_uuid = e.parent_step_uuid
WHERE c.claim_token = ?8;

COMMIT;
