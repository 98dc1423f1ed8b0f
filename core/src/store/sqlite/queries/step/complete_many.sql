-- Apply results: each step moves from 'in_progress' (and only under the claim the
-- result quotes) through its orchestration hop to its final state. A result for a
-- claim that no longer holds the step updates nothing and is not returned.
-- ?1: JSON array of {step_uuid, claim_seq, state, event, path, result, error, ready_at, metadata};
-- ?2: now; ?3: processor
UPDATE steps
SET state = r.state,
    transition_event = r.event,
    transition_path = r.path,
    transition_metadata = r.metadata,
    transition_processor = ?3,
    result = COALESCE(r.result, steps.result),
    error = r.error,
    ready_at = r.ready_at,
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
RETURNING steps.step_uuid, steps.task_uuid, steps.state
