-- One task and its steps (in creation order), read in one round trip from one
-- snapshot. ?1: task uuid
BEGIN;

SELECT 'task' AS kind, task_uuid, namespace, name, version, state, context, correlation_id, created_at, completed_at
FROM tasks
WHERE task_uuid = ?1;

SELECT 'step' AS kind, step_uuid, name, state, attempts, max_attempts, handler_callable, result, error,
       completed_at, ready_at
FROM steps
WHERE task_uuid = ?1
ORDER BY created_at, step_uuid;

COMMIT;
