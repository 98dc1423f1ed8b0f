-- Lock a resolution's entry and its task (the task row before any step row, as every
-- writer does). The entry is read by the next statement, whose snapshot sees what
-- a resolver that held the lock before committed. $1: entry id
SELECT d.entry_id
FROM dead_letter_entries AS d
JOIN tasks AS t ON t.task_uuid = d.task_uuid
WHERE d.entry_id = $1
FOR UPDATE OF t, d
