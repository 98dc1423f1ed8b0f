-- Claims whose lease ran out. $1: now; $2: limit
SELECT step_uuid, task_uuid, namespace, claim_seq, attempts, retry_policy, step_type, deadline_at <= $1 AS past_deadline
FROM steps
WHERE state = 'in_progress'
  AND lease_expires_at < $1
ORDER BY lease_expires_at
LIMIT $2
