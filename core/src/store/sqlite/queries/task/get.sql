-- One task. ?1: task uuid
SELECT task_uuid, namespace, name, version, state, context, correlation_id, created_at, completed_at
FROM tasks
WHERE task_uuid = ?1
