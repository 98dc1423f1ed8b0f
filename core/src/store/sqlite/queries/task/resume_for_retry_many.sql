-- Tasks resting in waiting_for_retry whose retried steps were just claimed run again.
-- ?1: JSON array of task uuids; ?2: now; ?3: processor; ?4: path (JSON text); ?5: final event
UPDATE tasks
SET state = 'steps_in_process',
    transition_event = ?5,
    transition_path = ?4,
    transition_metadata = NULL,
    transition_processor = ?3,
    updated_at = ?2
WHERE task_uuid IN (SELECT value FROM json_each(?1))
  AND state = 'waiting_for_retry'
