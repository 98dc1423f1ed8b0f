-- Lock the rows of tasks about to be evaluated, in a fixed order (no deadlocks
-- between batches). Results for one task thereby apply one transaction at a time,
-- and the next statement's snapshot sees every earlier one: a task whose last two
-- steps finish at once is finalized exactly once. $1: task uuids
SELECT task_uuid
FROM tasks
WHERE task_uuid = ANY($1::uuid[])
ORDER BY task_uuid
FOR UPDATE
