-- Hand claimed steps back to the queue; the attempt the claim counted is returned.
-- $1: claims JSON [{step_uuid, claim_seq}]; $2: now; $3: processor; $4: event; $5: metadata
UPDATE steps AS s
SET state = 'enqueued',
    transition_event = $4,
    transition_path = NULL,
    transition_metadata = $5::jsonb,
    transition_processor = $3,
    attempts = s.attempts - 1,
    claimed_by = NULL,
    lease_expires_at = NULL,
    deadline_at = NULL,
    ready_at = $2,
    updated_at = $2
FROM jsonb_to_recordset($1::jsonb) AS h(step_uuid uuid, claim_seq bigint)
WHERE s.step_uuid = h.step_uuid
  AND s.state = 'in_progress'
  AND s.claim_seq = h.claim_seq
RETURNING s.step_uuid
