-- One task with its steps (in creation order), from one snapshot. $1: task uuid
SELECT t.task_uuid, t.namespace, t.name, t.version, t.state, t.context, t.correlation_id, t.created_at, t.completed_at,
       COALESCE((SELECT jsonb_agg(jsonb_build_object(
                     'step_uuid', s.step_uuid, 'name', s.name, 'state', s.state, 'attempts', s.attempts,
                     'max_attempts', s.max_attempts, 'handler', s.handler_callable, 'result', s.result,
                     'error', s.error, 'completed_at', s.completed_at, 'ready_at', s.ready_at)
                     ORDER BY s.created_at, s.step_uuid)
                 FROM steps AS s WHERE s.task_uuid = t.task_uuid), '[]'::jsonb) AS steps
FROM tasks AS t
WHERE t.task_uuid = $1
