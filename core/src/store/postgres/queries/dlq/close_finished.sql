-- Close the open entries whose task finished meanwhile (its running steps answered,
-- or it was cancelled): nobody has anything left to resolve. $1: now
UPDATE dead_letter_entries AS d
SET status = 'resolved',
    resolution = 'task_finished',
    resolved_by = 'staleness sweep',
    resolved_at = $1
FROM tasks AS t
WHERE d.status = 'open'
  AND t.task_uuid = d.task_uuid
  AND t.state IN ('complete', 'cancelled', 'resolved_manually')
