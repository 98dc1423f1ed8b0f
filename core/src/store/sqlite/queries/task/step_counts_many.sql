-- Step counts per state for each task, with the task's own state.
-- ?1: JSON array of task uuids
SELECT t.task_uuid, t.state AS task_state, t.hold_failed, s.state AS step_state, count(s.step_uuid) AS n
FROM tasks AS t
LEFT JOIN steps AS s ON s.task_uuid = t.task_uuid
WHERE t.task_uuid IN (SELECT value FROM json_each(?1))
GROUP BY t.task_uuid, t.state, t.hold_failed, s.state
