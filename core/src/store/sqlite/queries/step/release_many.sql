-- Hand claimed steps back to the queue; the attempt the claim counted is returned.
-- ?1: JSON array of {step_uuid, claim_seq}; ?2: now; ?3: processor; ?4: event; ?5: metadata
UPDATE steps
SET state = 'enqueued',
    transition_event = ?4,
    transition_path = NULL,
    transition_metadata = ?5,
    transition_processor = ?3,
    attempts = attempts - 1,
    claimed_by = NULL,
    lease_expires_at = NULL,
    deadline_at = NULL,
    ready_at = ?2,
    updated_at = ?2
FROM (SELECT c.value ->> '$.step_uuid' AS step_uuid, c.value ->> '$.claim_seq' AS claim_seq
      FROM json_each(?1) AS c) AS h
WHERE steps.step_uuid = h.step_uuid
  AND steps.state = 'in_progress'
  AND steps.claim_seq = h.claim_seq
RETURNING steps.step_uuid
