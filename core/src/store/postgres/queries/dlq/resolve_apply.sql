-- A resolution's writes, in the transaction that locked the entry, the task and the
-- step: the step's move (compare-and-swap on the state read), its successors (one
-- pending parent fewer when the step now satisfies them; enqueued when none is
-- left), and the entry closed (compare-and-swap on status = 'open'). The task is
-- re-evaluated next (`task/step_counts_many.sql`, `task/transition_many.sql`).
-- The step moves write their audit rows here, and steps made claimable NOTIFY
-- `tasker_ready` (ADR 0012).
-- $1: step uuid; $2: expected state; $3: new state; $4: final event; $5: path JSON;
-- $6: audit metadata; $7: processor; $8: now; $9: result or NULL; $10: reset attempts;
-- $11: satisfies successors; $12: entry id; $13: resolution; $14: note; $15: resolved by
WITH step AS (
    UPDATE steps
    SET state = $3,
        transition_event = $4,
        transition_path = $5::jsonb,
        transition_metadata = $6,
        transition_processor = $7,
        attempts = CASE WHEN $10 THEN 0 ELSE attempts END,
        result = COALESCE($9, result),
        ready_at = CASE WHEN $3 = 'enqueued' THEN $8 ELSE NULL END,
        lease_expires_at = NULL,
        completed_at = CASE WHEN $3 IN ('complete', 'resolved_manually') THEN $8 ELSE completed_at END,
        updated_at = $8
    WHERE step_uuid = $1
      AND state = $2
    RETURNING step_uuid, task_uuid, namespace, $2::text AS old_state, state, transition_event, transition_path,
              transition_metadata, transition_processor, updated_at
),
children AS (
    UPDATE steps AS c
    SET pending_parents = c.pending_parents - 1,
        state = CASE WHEN c.pending_parents = 1 THEN 'enqueued' ELSE c.state END,
        transition_event = CASE WHEN c.pending_parents = 1 THEN 'enqueue' ELSE c.transition_event END,
        transition_path = NULL,
        transition_metadata = CASE WHEN c.pending_parents = 1 THEN $6 ELSE c.transition_metadata END,
        transition_processor = CASE WHEN c.pending_parents = 1 THEN $7 ELSE c.transition_processor END,
        ready_at = CASE WHEN c.pending_parents = 1 THEN $8 ELSE c.ready_at END,
        updated_at = $8
    FROM step_edges AS e
    WHERE $11
      AND EXISTS (SELECT 1 FROM step)
      AND e.parent_step_uuid = $1
      AND c.step_uuid = e.child_step_uuid
      AND c.state = 'pending'
    RETURNING c.step_uuid, c.task_uuid, c.namespace, 'pending' AS old_state, c.state, c.transition_event,
              c.transition_path, c.transition_metadata, c.transition_processor, c.updated_at
),
moves AS (
    SELECT * FROM step
    UNION ALL
    SELECT * FROM children WHERE state <> 'pending'
),
audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT m.step_uuid, m.task_uuid, h.from_state, h.to_state, h.event, m.transition_metadata, m.transition_processor,
           m.updated_at
    FROM moves AS m
    CROSS JOIN LATERAL tasker_audit_hops(m.old_state, m.transition_path, m.state, m.transition_event) AS h
    WHERE m.old_state IS DISTINCT FROM m.state OR m.transition_path IS NOT NULL
    ORDER BY m.step_uuid, h.ord
),
wake AS (
    SELECT count(pg_notify('tasker_ready', ns)) AS notified
    FROM (SELECT DISTINCT namespace AS ns FROM moves WHERE state = 'enqueued') AS r
),
entry AS (
    UPDATE dead_letter_entries
    SET status = 'resolved',
        resolution = $13,
        resolution_step_uuid = $1,
        resolution_note = $14,
        resolved_by = $15,
        resolved_at = $8
    WHERE entry_id = $12
      AND status = 'open'
      AND EXISTS (SELECT 1 FROM step)
    RETURNING entry_id
)
SELECT 'step' AS kind, s.step_uuid, s.namespace, s.state FROM step AS s CROSS JOIN wake
UNION ALL
SELECT 'child', step_uuid, namespace, state FROM children
UNION ALL
SELECT 'resolved', entry_id, NULL, NULL FROM entry
