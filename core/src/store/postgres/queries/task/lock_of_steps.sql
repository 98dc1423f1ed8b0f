-- Lock the rows of the tasks these steps belong to, in a fixed order (no deadlocks
-- between batches): results for one task then apply one transaction at a time, and
-- the next statement's snapshot sees every earlier one, so a task whose last two
-- steps finish at once is finalized exactly once. $1: step uuids
SELECT t.task_uuid
FROM tasks AS t
WHERE t.task_uuid IN (SELECT s.task_uuid FROM steps AS s WHERE s.step_uuid = ANY($1::uuid[]))
ORDER BY t.task_uuid
FOR UPDATE OF t
