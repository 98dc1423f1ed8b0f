-- Audit rows of a task, oldest first. $1: task uuid
SELECT transition_id, from_state, to_state, event, metadata, processor, created_at,
       transition_id = MAX(transition_id) OVER () AS most_recent
FROM task_transitions
WHERE task_uuid = $1
ORDER BY transition_id
