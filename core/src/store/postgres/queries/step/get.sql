-- One step. $1: step uuid
SELECT step_uuid, name, state, attempts, max_attempts, handler_callable, result, error, completed_at, ready_at
FROM steps
WHERE step_uuid = $1
