-- The steps of a task, in creation order. ?1: task uuid
SELECT step_uuid, name, state, attempts, max_attempts, handler_callable, result, error, completed_at, ready_at
FROM steps
WHERE task_uuid = ?1
ORDER BY created_at, step_uuid
