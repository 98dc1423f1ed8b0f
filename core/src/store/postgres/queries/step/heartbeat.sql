-- A running handler's heartbeat: extend the lease, optionally move the attempt's
-- deadline later and save a batch worker's checkpoint, while the claim is held.
-- The state does not change, so no audit row is written.
-- $1: step_uuid; $2: claim_seq; $3: new lease end; $4: new deadline or NULL;
-- $5: checkpoint JSON or NULL; $6: now
UPDATE steps AS s
SET deadline_at = GREATEST(s.deadline_at, COALESCE($4, s.deadline_at)),
    lease_expires_at = GREATEST(s.lease_expires_at, LEAST($3, GREATEST(s.deadline_at, COALESCE($4, s.deadline_at)))),
    checkpoint = COALESCE($5::jsonb, s.checkpoint),
    updated_at = $6
WHERE s.step_uuid = $1
  AND s.state = 'in_progress'
  AND s.claim_seq = $2
RETURNING s.deadline_at
