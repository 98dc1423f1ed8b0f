-- A resolution's writes, inside the transaction `dlq/resolve_begin.sql` opened: the
-- step's move (compare-and-swap on the state read), its successors (one pending
-- parent fewer when the step now satisfies them; enqueued when none is left), the
-- entry closed (compare-and-swap on status = 'open'), and the task's step counts
-- for its re-evaluation (`task/transition_many_commit.sql` finishes the transaction).
-- ?1: step uuid; ?2: expected state; ?3: new state; ?4: final event; ?5: path JSON;
-- ?6: audit metadata; ?7: processor; ?8: now; ?9: result JSON or NULL;
-- ?10: reset attempts (0/1); ?11: satisfies successors (0/1); ?12: entry id;
-- ?13: resolution; ?14: note; ?15: resolved by
WITH unused_parameters AS (SELECT ?10, ?11)
UPDATE steps
SET state = ?3,
    transition_event = ?4,
    transition_path = ?5,
    transition_metadata = ?6,
    transition_processor = ?7,
    attempts = CASE WHEN ?10 = 1 THEN 0 ELSE attempts END,
    result = COALESCE(?9, result),
    ready_at = CASE WHEN ?3 = 'enqueued' THEN ?8 ELSE NULL END,
    lease_expires_at = NULL,
    completed_at = CASE WHEN ?3 IN ('complete', 'resolved_manually') THEN ?8 ELSE completed_at END,
    updated_at = ?8
WHERE step_uuid = ?1
  AND state = ?2
RETURNING 'step' AS kind, step_uuid, namespace, state;

WITH unused_parameters AS (SELECT ?2, ?3, ?4, ?5, ?9, ?10)
UPDATE steps
SET pending_parents = pending_parents - 1,
    state = CASE WHEN pending_parents = 1 THEN 'enqueued' ELSE state END,
    transition_event = CASE WHEN pending_parents = 1 THEN 'enqueue' ELSE transition_event END,
    transition_path = NULL,
    transition_metadata = CASE WHEN pending_parents = 1 THEN ?6 ELSE transition_metadata END,
    transition_processor = CASE WHEN pending_parents = 1 THEN ?7 ELSE transition_processor END,
    ready_at = CASE WHEN pending_parents = 1 THEN ?8 ELSE ready_at END,
    updated_at = ?8
WHERE ?11 = 1
  AND state = 'pending'
  AND step_uuid IN (SELECT child_step_uuid FROM step_edges WHERE parent_step_uuid = ?1)
RETURNING 'child' AS kind, step_uuid, namespace, state;

WITH unused_parameters AS (SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?10, ?11)
UPDATE dead_letter_entries
SET status = 'resolved',
    resolution = ?13,
    resolution_step_uuid = ?1,
    resolution_note = ?14,
    resolved_by = ?15,
    resolved_at = ?8
WHERE entry_id = ?12
  AND status = 'open'
RETURNING 'resolved' AS kind, entry_id AS step_uuid, NULL AS namespace, status AS state;

WITH unused_parameters AS (SELECT ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14, ?15)
SELECT 'count' AS kind, t.task_uuid, t.state AS task_state, t.hold_failed, s.state AS step_state,
       count(s.step_uuid) AS n
FROM tasks AS t
LEFT JOIN steps AS s ON s.task_uuid = t.task_uuid
WHERE t.task_uuid = (SELECT task_uuid FROM dead_letter_entries WHERE entry_id = ?12)
  AND ?1 IS NOT NULL
GROUP BY t.task_uuid, t.state, t.hold_failed, s.state;
