-- Lock the candidate tasks of a sweep, in a fixed order, skipping any another
-- transaction holds (another sweep, a result, a cancel: the next sweep looks again),
-- and read their state now, so a task that moved since the candidates were read, or
-- got an open entry meanwhile, is left alone. Tasks are locked before any of their
-- steps, the order every writer follows. $1: task uuids
SELECT t.task_uuid, t.state, t.updated_at
FROM tasks AS t
WHERE t.task_uuid = ANY($1::uuid[])
  AND NOT EXISTS (SELECT 1 FROM dead_letter_entries AS d WHERE d.task_uuid = t.task_uuid AND d.status = 'open')
ORDER BY t.task_uuid
FOR UPDATE OF t SKIP LOCKED
