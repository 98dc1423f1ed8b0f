-- Hydrate claimed steps: their tasks (kind 'task') and their parents' results (kind 'dep').
-- ?1: JSON array of task uuids; ?2: JSON array of step uuids
SELECT 'task' AS kind, t.task_uuid AS owner, t.name AS name, t.version AS version,
       t.context AS payload, t.correlation_id AS correlation_id
FROM tasks AS t
WHERE t.task_uuid IN (SELECT value FROM json_each(?1))
UNION ALL
SELECT 'dep' AS kind, e.child_step_uuid AS owner, p.name AS name, NULL AS version,
       p.result AS payload, NULL AS correlation_id
FROM step_edges AS e
JOIN steps AS p ON p.step_uuid = e.parent_step_uuid
WHERE e.child_step_uuid IN (SELECT value FROM json_each(?2))
