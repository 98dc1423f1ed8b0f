-- Apply a batch of results, first half (the transaction stays open for the task
-- evaluation, which needs Rust between the two halves). Sent after
-- `BEGIN IMMEDIATE;` in one round trip, or, when the batch has decision or batch
-- outcomes, appended to complete_many_expand.sql (its ?5 is not used here):
--  1. each step moves from 'in_progress', and only under the claim its result
--     quotes, through its orchestration hop to its final state; applied rows get
--     result token ?4 (a result for a claim that no longer holds the step changes
--     nothing and is not returned);
--  2. children of steps completed by this batch lose one pending parent per
--     completed parent; a pending child left with none is enqueued;
--  3. step counts per state of every task this batch touched.
-- ?1: JSON array of {step_uuid, claim_seq, state, event, path, result, error, ready_at, metadata};
-- ?2: now; ?3: processor; ?4: result token
UPDATE steps
SET state = r.state,
    transition_event = r.event,
    transition_path = r.path,
    transition_metadata = r.metadata,
    transition_processor = ?3,
    result = COALESCE(r.result, steps.result),
    error = r.error,
    ready_at = r.ready_at,
    result_token = ?4,
    lease_expires_at = NULL,
    deadline_at = NULL,
    claimed_by = NULL,
    completed_at = CASE WHEN r.state = 'complete' THEN ?2 END,
    updated_at = ?2
FROM (SELECT c.value ->> '$.step_uuid' AS step_uuid, c.value ->> '$.claim_seq' AS claim_seq,
             c.value ->> '$.state' AS state, c.value ->> '$.event' AS event, c.value ->> '$.path' AS path,
             c.value ->> '$.result' AS result, c.value ->> '$.error' AS error,
             c.value ->> '$.ready_at' AS ready_at, c.value ->> '$.metadata' AS metadata
      FROM json_each(?1) AS c) AS r
WHERE steps.step_uuid = r.step_uuid
  AND steps.state = 'in_progress'
  AND steps.claim_seq = r.claim_seq
RETURNING 'applied' AS kind, steps.step_uuid, steps.task_uuid, steps.namespace, steps.state;

UPDATE steps
SET pending_parents = steps.pending_parents - d.done,
    state = CASE WHEN steps.state = 'pending' AND steps.pending_parents - d.done = 0
                 THEN 'enqueued' ELSE steps.state END,
    ready_at = CASE WHEN steps.state = 'pending' AND steps.pending_parents - d.done = 0
                    THEN ?2 ELSE steps.ready_at END,
    transition_event = 'enqueue',
    transition_path = NULL,
    transition_metadata = NULL,
    transition_processor = ?3,
    updated_at = ?2
FROM (SELECT e.child_step_uuid AS child, count(*) AS done
      FROM json_each(?1) AS c
      JOIN steps AS p ON p.step_uuid = c.value ->> '$.step_uuid'
      JOIN step_edges AS e ON e.parent_step_uuid = p.step_uuid
      WHERE p.result_token = ?4 AND p.state = 'complete'
      GROUP BY e.child_step_uuid) AS d
WHERE steps.step_uuid = d.child
RETURNING 'successor' AS kind, steps.step_uuid, steps.task_uuid, steps.namespace, steps.state;

WITH unused_parameters AS (SELECT ?2, ?3)
SELECT 'count' AS kind, t.task_uuid, t.state AS task_state, t.hold_failed, s.state AS step_state,
       count(s.step_uuid) AS n
FROM tasks AS t
LEFT JOIN steps AS s ON s.task_uuid = t.task_uuid
WHERE t.task_uuid IN (SELECT p.task_uuid
                      FROM json_each(?1) AS c
                      JOIN steps AS p ON p.step_uuid = c.value ->> '$.step_uuid'
                      WHERE p.result_token = ?4)
GROUP BY t.task_uuid, t.state, t.hold_failed, s.state;
