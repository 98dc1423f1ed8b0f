-- After complete_many_expand.sql, when the expansion gave existing pending steps
-- more parents: each waits for that many more. Their state does not change, so no
-- audit row is written.
-- $1: expansion JSON (its `bumps`: [{step_uuid, added}]); $2: now
UPDATE steps AS s
SET pending_parents = s.pending_parents + b.added,
    updated_at = $2
FROM jsonb_to_recordset($1::jsonb -> 'bumps') AS b(step_uuid uuid, added int)
WHERE s.step_uuid = b.step_uuid
  AND s.state = 'pending'
