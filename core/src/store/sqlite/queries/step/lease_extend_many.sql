-- Extend the leases of claims this worker still holds, never past the step's deadline.
-- ?1: JSON array of {step_uuid, claim_seq}; ?2: new lease end; ?3: now
UPDATE steps
SET lease_expires_at = MAX(lease_expires_at, MIN(?2, deadline_at)),
    updated_at = ?3
FROM (SELECT c.value ->> '$.step_uuid' AS step_uuid, c.value ->> '$.claim_seq' AS claim_seq
      FROM json_each(?1) AS c) AS h
WHERE steps.step_uuid = h.step_uuid
  AND steps.state = 'in_progress'
  AND steps.claim_seq = h.claim_seq
