-- Tasks, newest first, optionally filtered. $1: state or NULL; $2: namespace or NULL; $3: limit; $4: offset
SELECT task_uuid, namespace, name, version, state, step_count, created_at, completed_at
FROM tasks
WHERE ($1::text IS NULL OR state = $1)
  AND ($2::text IS NULL OR namespace = $2)
ORDER BY created_at DESC, task_uuid DESC
LIMIT $3 OFFSET $4
