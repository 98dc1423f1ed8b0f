-- Open a write transaction and read the step counts per state of each task (the
-- TaskFinalizer's input); `task/transition_many_commit.sql` finishes it.
-- ?1: JSON array of task uuids
BEGIN IMMEDIATE;

SELECT 'count' AS kind, t.task_uuid, t.state AS task_state, t.hold_failed, s.state AS step_state,
       count(s.step_uuid) AS n
FROM tasks AS t
LEFT JOIN steps AS s ON s.task_uuid = t.task_uuid
WHERE t.task_uuid IN (SELECT value FROM json_each(?1))
GROUP BY t.task_uuid, t.state, t.hold_failed, s.state;
