-- Extend the leases of claims this worker still holds: never past the step's
-- deadline, never backwards. The state does not change, so no audit row is written.
-- $1: claims JSON [{step_uuid, claim_seq}]; $2: new lease end; $3: now
UPDATE steps AS s
SET lease_expires_at = GREATEST(s.lease_expires_at, LEAST($2, s.deadline_at)),
    updated_at = $3
FROM jsonb_to_recordset($1::jsonb) AS h(step_uuid uuid, claim_seq bigint)
WHERE s.step_uuid = h.step_uuid
  AND s.state = 'in_progress'
  AND s.claim_seq = h.claim_seq
