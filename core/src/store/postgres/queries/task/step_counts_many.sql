-- Step counts per state of each task (after `task/lock_many.sql` locked them).
-- $1: task uuids
SELECT 'count' AS kind, jsonb_build_object('task_uuid', t.task_uuid, 'task_state', t.state, 'hold_failed', t.hold_failed,
                                           'step_state', s.state, 'n', count(s.step_uuid)) AS data
FROM tasks AS t
LEFT JOIN steps AS s ON s.task_uuid = t.task_uuid
WHERE t.task_uuid = ANY($1::uuid[])
GROUP BY t.task_uuid, t.state, t.hold_failed, s.state
