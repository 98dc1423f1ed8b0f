-- A running handler's heartbeat: extend the lease, optionally move the attempt's
-- deadline later and save a batch worker's checkpoint, while the claim is held.
-- ?1: step_uuid; ?2: claim_seq; ?3: new lease end; ?4: new deadline or NULL;
-- ?5: checkpoint JSON or NULL; ?6: now
UPDATE steps
SET deadline_at = MAX(deadline_at, COALESCE(?4, deadline_at)),
    lease_expires_at = MAX(lease_expires_at, MIN(?3, MAX(deadline_at, COALESCE(?4, deadline_at)))),
    checkpoint = COALESCE(?5, checkpoint),
    updated_at = ?6
WHERE step_uuid = ?1
  AND state = 'in_progress'
  AND claim_seq = ?2
RETURNING deadline_at
