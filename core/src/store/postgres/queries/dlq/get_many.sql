-- Dead-letter entries by id, as JSON objects. $1: entry ids
SELECT jsonb_build_object(
           'entry_id', d.entry_id, 'task_uuid', d.task_uuid, 'namespace', t.namespace, 'task_name', t.name,
           'step_uuid', d.step_uuid, 'reason', d.reason, 'task_state', d.task_state, 'stale_state', d.stale_state,
           'stale_since', d.stale_since, 'stale_for_ms', d.stale_for_ms, 'threshold_ms', d.threshold_ms,
           'snapshot', d.snapshot, 'status', d.status, 'resolution', d.resolution,
           'resolution_step_uuid', d.resolution_step_uuid, 'resolution_note', d.resolution_note,
           'resolved_by', d.resolved_by, 'detected_by', d.detected_by, 'detected_at', d.detected_at,
           'resolved_at', d.resolved_at) AS data
FROM dead_letter_entries AS d
JOIN tasks AS t ON t.task_uuid = d.task_uuid
WHERE d.entry_id = ANY($1::uuid[])
ORDER BY d.detected_at, d.entry_id
