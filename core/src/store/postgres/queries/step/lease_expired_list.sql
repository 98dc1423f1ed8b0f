-- Claims whose lease ran out, with what firing the step's declared events needs
-- (its names and its task's template). $1: now; $2: limit
SELECT s.step_uuid, s.task_uuid, s.namespace, s.claim_seq, s.attempts, s.retry_policy, s.step_type,
       s.deadline_at <= $1 AS past_deadline, s.name, s.template_step_name,
       t.namespace AS task_namespace, t.name AS task_name, t.version AS task_version, t.correlation_id
FROM steps AS s
JOIN tasks AS t ON t.task_uuid = s.task_uuid
WHERE s.state = 'in_progress'
  AND s.lease_expires_at < $1
ORDER BY s.lease_expires_at
LIMIT $2
