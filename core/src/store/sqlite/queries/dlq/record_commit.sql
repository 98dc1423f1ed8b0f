-- Record detections and hold their tasks, then commit the transaction that
-- `dlq/stale_candidates_begin.sql` opened (so nothing moved in between). Each entry
-- is inserted with a snapshot of its task and steps as they are before this
-- script moves them; the open-entry unique index keeps one open entry per task.
-- Only tasks whose entry was inserted move: a stuck step --dead_letter--> error,
-- the task --dead_letter--> blocked_by_failures (unless already held), each a
-- compare-and-swap on the state the candidate was read in.
-- ?1: JSON array of detections (see `store::dlq::record_payload`); ?2: now; ?3: processor
INSERT INTO dead_letter_entries (entry_id, task_uuid, step_uuid, reason, task_state, stale_state, stale_since,
                                 stale_for_ms, threshold_ms, snapshot, status, detected_by, detected_at)
SELECT p.value ->> '$.entry_id', t.task_uuid, p.value ->> '$.step_uuid', p.value ->> '$.reason', t.state,
       p.value ->> '$.stale_state', p.value ->> '$.stale_since', p.value ->> '$.stale_for_ms',
       p.value ->> '$.threshold_ms',
       json_object(
           'detected_at', ?2,
           'task', json_object('task_uuid', t.task_uuid, 'namespace', t.namespace, 'name', t.name,
                               'version', t.version, 'state', t.state, 'context', json(t.context),
                               'correlation_id', t.correlation_id, 'priority', t.priority,
                               'created_at', t.created_at, 'updated_at', t.updated_at),
           'steps', (SELECT json_group_array(json_object(
                         'step_uuid', s.step_uuid, 'name', s.name, 'template_step_name', s.template_step_name,
                         'namespace', s.namespace, 'state', s.state,
                         'attempts', s.attempts, 'max_attempts', s.max_attempts, 'handler', s.handler_callable,
                         'pending_parents', s.pending_parents, 'ready_at', s.ready_at, 'claimed_by', s.claimed_by,
                         'lease_expires_at', s.lease_expires_at, 'deadline_at', s.deadline_at,
                         'result', json(s.result), 'error', json(s.error), 'updated_at', s.updated_at))
                     FROM (SELECT * FROM steps WHERE task_uuid = t.task_uuid ORDER BY created_at, step_uuid) AS s)),
       'open', ?3, ?2
FROM json_each(?1) AS p
JOIN tasks AS t ON t.task_uuid = p.value ->> '$.task_uuid' AND t.state = p.value ->> '$.task_state'
WHERE true
ON CONFLICT DO NOTHING;

WITH unused_parameters AS (SELECT ?2, ?3)
UPDATE steps
SET state = 'error',
    transition_event = p.event,
    transition_path = NULL,
    transition_metadata = p.metadata,
    transition_processor = ?3,
    error = p.step_error,
    lease_expires_at = NULL,
    ready_at = NULL,
    updated_at = ?2
FROM (SELECT x.value ->> '$.step_uuid' AS step_uuid, x.value ->> '$.stale_state' AS stale_state,
             x.value ->> '$.event' AS event, x.value ->> '$.metadata' AS metadata,
             x.value ->> '$.step_error' AS step_error, x.value ->> '$.entry_id' AS entry_id
      FROM json_each(?1) AS x
      WHERE x.value ->> '$.step_to' IS NOT NULL) AS p
WHERE steps.step_uuid = p.step_uuid
  AND steps.state = p.stale_state
  AND EXISTS (SELECT 1 FROM dead_letter_entries AS d WHERE d.entry_id = p.entry_id);

UPDATE tasks
SET state = 'blocked_by_failures',
    transition_event = p.event,
    transition_path = NULL,
    transition_metadata = p.metadata,
    transition_processor = ?3,
    updated_at = ?2
FROM (SELECT x.value ->> '$.task_uuid' AS task_uuid, x.value ->> '$.task_state' AS task_state,
             x.value ->> '$.event' AS event, x.value ->> '$.metadata' AS metadata,
             x.value ->> '$.entry_id' AS entry_id
      FROM json_each(?1) AS x
      WHERE x.value ->> '$.task_to' IS NOT NULL) AS p
WHERE tasks.task_uuid = p.task_uuid
  AND tasks.state = p.task_state
  AND EXISTS (SELECT 1 FROM dead_letter_entries AS d WHERE d.entry_id = p.entry_id);

WITH unused_parameters AS (SELECT ?2, ?3)
SELECT 'recorded' AS kind, d.entry_id
FROM dead_letter_entries AS d
WHERE d.entry_id IN (SELECT x.value ->> '$.entry_id' FROM json_each(?1) AS x);

COMMIT;
