-- Open a resolution's write transaction and read what it decides on: the entry (as
-- JSON) and the step acted on. ?1: entry id; ?2: step uuid
BEGIN IMMEDIATE;

SELECT 'entry' AS kind, json_object(
           'entry_id', d.entry_id, 'task_uuid', d.task_uuid, 'namespace', t.namespace, 'task_name', t.name,
           'step_uuid', d.step_uuid, 'reason', d.reason, 'task_state', d.task_state, 'stale_state', d.stale_state,
           'stale_since', d.stale_since, 'stale_for_ms', d.stale_for_ms, 'threshold_ms', d.threshold_ms,
           'snapshot', json(d.snapshot), 'status', d.status, 'resolution', d.resolution,
           'resolution_step_uuid', d.resolution_step_uuid, 'resolution_note', d.resolution_note,
           'resolved_by', d.resolved_by, 'detected_by', d.detected_by, 'detected_at', d.detected_at,
           'resolved_at', d.resolved_at) AS data
FROM dead_letter_entries AS d
JOIN tasks AS t ON t.task_uuid = d.task_uuid
WHERE d.entry_id = ?1
UNION ALL
SELECT 'step', json_object('task_uuid', s.task_uuid, 'state', s.state, 'pending_parents', s.pending_parents)
FROM steps AS s
WHERE s.step_uuid = ?2;
