-- Open the staleness sweep's write transaction and find what is stale: one row per
-- rule a task (or one of its steps) breaks; Rust keeps one per task. Tasks with an
-- open dead-letter entry are left out. A NULL threshold turns its rule off; a
-- template's `lifecycle` minutes override the task-level thresholds.
-- ?1: now; ?2: step lease grace; ?3: step enqueued; ?4: waiting_for_dependencies;
-- ?5: waiting_for_retry; ?6: steps_in_process; ?7: blocked_by_failures; ?8: error;
-- ?9: max lifetime (all ms); ?10: row limit
BEGIN IMMEDIATE;

-- Open entries whose task finished meanwhile (its running steps answered, or it was
-- cancelled) are closed: nobody has anything left to resolve.
UPDATE dead_letter_entries
SET status = 'resolved',
    resolution = 'task_finished',
    resolved_by = 'staleness sweep',
    resolved_at = ?1
WHERE status = 'open'
  AND task_uuid IN (SELECT task_uuid FROM tasks WHERE state IN ('complete', 'cancelled', 'resolved_manually'))
RETURNING 'closed' AS kind, entry_id AS data;

WITH live AS (
    SELECT t.task_uuid, t.state, t.updated_at, t.created_at, tp.definition AS def
    FROM tasks AS t
    JOIN templates AS tp ON tp.content_hash = t.template_hash
    WHERE t.state NOT IN ('complete', 'cancelled', 'resolved_manually')
      AND NOT EXISTS (SELECT 1 FROM dead_letter_entries AS d WHERE d.task_uuid = t.task_uuid AND d.status = 'open')
),
idle AS (
    SELECT l.* FROM live AS l
    WHERE NOT EXISTS (SELECT 1 FROM steps AS s
                      WHERE s.task_uuid = l.task_uuid
                        AND s.state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                                        'enqueued_as_error_for_orchestration'))
),
found AS (
    SELECT l.task_uuid, s.step_uuid, 'step_lease_lost' AS reason, l.state AS task_state, s.state AS stale_state,
           s.lease_expires_at AS stale_since, ?2 AS threshold_ms, l.updated_at
    FROM live AS l JOIN steps AS s ON s.task_uuid = l.task_uuid
    WHERE s.state = 'in_progress' AND s.lease_expires_at + ?2 <= ?1
    UNION ALL
    SELECT l.task_uuid, s.step_uuid, 'step_enqueued_too_long', l.state, s.state, s.ready_at, ?3, l.updated_at
    FROM live AS l JOIN steps AS s ON s.task_uuid = l.task_uuid
    WHERE l.state IN ('steps_in_process', 'evaluating_results', 'enqueuing_steps', 'waiting_for_retry')
      AND s.state = 'enqueued' AND s.ready_at + ?3 <= ?1
    UNION ALL
    SELECT task_uuid, NULL, 'waiting_for_dependencies_too_long', state, state, updated_at, thr, updated_at
    FROM (SELECT i.*, COALESCE(json_extract(i.def, '$.lifecycle.max_waiting_for_dependencies_minutes') * 60000, ?4) AS thr
          FROM idle AS i WHERE i.state = 'waiting_for_dependencies')
    WHERE updated_at + thr <= ?1
    UNION ALL
    SELECT task_uuid, NULL, 'waiting_for_retry_too_long', state, state, updated_at, thr, updated_at
    FROM (SELECT i.*, COALESCE(json_extract(i.def, '$.lifecycle.max_waiting_for_retry_minutes') * 60000, ?5) AS thr
          FROM idle AS i WHERE i.state = 'waiting_for_retry')
    WHERE updated_at + thr <= ?1
    UNION ALL
    SELECT task_uuid, NULL, 'steps_in_process_too_long', state, state, updated_at, thr, updated_at
    FROM (SELECT l.*, COALESCE(json_extract(l.def, '$.lifecycle.max_steps_in_process_minutes') * 60000, ?6) AS thr
          FROM live AS l WHERE l.state = 'steps_in_process')
    WHERE updated_at + thr <= ?1
    UNION ALL
    SELECT task_uuid, NULL, 'blocked_too_long', state, state, updated_at, ?7, updated_at
    FROM live WHERE state = 'blocked_by_failures' AND updated_at + ?7 <= ?1
    UNION ALL
    SELECT task_uuid, NULL, 'error_unresolved', state, state, updated_at, ?8, updated_at
    FROM live WHERE state = 'error' AND updated_at + ?8 <= ?1
    UNION ALL
    SELECT task_uuid, NULL, 'max_lifetime_exceeded', state, state, created_at, thr, updated_at
    FROM (SELECT l.*, COALESCE(json_extract(l.def, '$.lifecycle.max_duration_minutes') * 60000, ?9) AS thr
          FROM live AS l WHERE l.state NOT IN ('error', 'blocked_by_failures'))
    WHERE created_at + thr <= ?1
)
SELECT 'candidate' AS kind, json_object('task_uuid', task_uuid, 'step_uuid', step_uuid, 'reason', reason, 'task_state', task_state,
                   'stale_state', stale_state, 'stale_since', stale_since, 'threshold_ms', threshold_ms,
                   'task_updated_at', updated_at) AS data
FROM found
ORDER BY stale_since
LIMIT ?10;
