-- Apply a batch of results in one statement (inside the transaction that locked
-- their tasks): each step moves from 'in_progress', only under the claim its result
-- quotes, through its orchestration hop to its final state; children of steps
-- completed here lose one pending parent per completed parent and are enqueued at
-- none; and each touched task's step counts are returned as they are after both
-- changes (a statement does not see its own CTEs' writes, so the counts overlay
-- the CTEs' new states on the snapshot). It writes the audit rows of both moves
-- and NOTIFYs `tasker_ready` for steps it made claimable (ADR 0012).
-- $1: results JSON; $2: now; $3: processor; $4: result token
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(step_uuid uuid, claim_seq bigint, state text, event text,
         path text, result text, error text, ready_at bigint, metadata text)
),
applied AS (
    UPDATE steps AS s
    SET state = r.state,
        transition_event = r.event,
        transition_path = r.path::jsonb,
        transition_metadata = r.metadata::jsonb,
        transition_processor = $3,
        result = COALESCE(r.result::jsonb, s.result),
        error = r.error::jsonb,
        ready_at = r.ready_at,
        result_token = $4,
        lease_expires_at = NULL,
        deadline_at = NULL,
        claimed_by = NULL,
        completed_at = CASE WHEN r.state = 'complete' THEN $2 END,
        updated_at = $2
    FROM input AS r
    WHERE s.step_uuid = r.step_uuid
      AND s.state = 'in_progress'
      AND s.claim_seq = r.claim_seq
    RETURNING s.step_uuid, s.task_uuid, s.namespace, 'in_progress' AS old_state, s.state, s.transition_event,
              s.transition_path, s.transition_metadata, s.transition_processor, s.updated_at
),
done AS (
    SELECT e.child_step_uuid AS child, count(*) AS n, min(c.state) AS old_state
    FROM applied AS a
    JOIN step_edges AS e ON e.parent_step_uuid = a.step_uuid
    JOIN steps AS c ON c.step_uuid = e.child_step_uuid
    WHERE a.state = 'complete'
    GROUP BY e.child_step_uuid
),
successors AS (
    UPDATE steps AS s
    SET pending_parents = s.pending_parents - d.n,
        state = CASE WHEN s.state = 'pending' AND s.pending_parents - d.n = 0 THEN 'enqueued' ELSE s.state END,
        ready_at = CASE WHEN s.state = 'pending' AND s.pending_parents - d.n = 0 THEN $2 ELSE s.ready_at END,
        transition_event = 'enqueue',
        transition_path = NULL,
        transition_metadata = NULL,
        transition_processor = $3,
        updated_at = $2
    FROM done AS d
    WHERE s.step_uuid = d.child
    RETURNING s.step_uuid, s.task_uuid, s.namespace, d.old_state, s.state, s.transition_event,
              s.transition_path, s.transition_metadata, s.transition_processor, s.updated_at
),
changed AS (
    SELECT step_uuid, state FROM applied
    UNION ALL
    SELECT step_uuid, state FROM successors
),
moves AS (
    SELECT * FROM applied
    UNION ALL
    SELECT * FROM successors WHERE old_state IS DISTINCT FROM state
),
audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT m.step_uuid, m.task_uuid, h.from_state, h.to_state, h.event, m.transition_metadata, m.transition_processor,
           m.updated_at
    FROM moves AS m
    CROSS JOIN LATERAL tasker_audit_hops(m.old_state, m.transition_path, m.state, m.transition_event) AS h
    ORDER BY m.step_uuid, h.ord
),
wake AS (
    SELECT count(pg_notify('tasker_ready', ns)) AS notified
    FROM (SELECT DISTINCT namespace AS ns FROM moves WHERE state = 'enqueued') AS r
),
counts AS (
    SELECT t.task_uuid, t.state AS task_state, t.hold_failed, COALESCE(c.state, s.state) AS step_state, count(*) AS n
    FROM tasks AS t
    JOIN steps AS s ON s.task_uuid = t.task_uuid
    LEFT JOIN changed AS c ON c.step_uuid = s.step_uuid
    WHERE t.task_uuid IN (SELECT task_uuid FROM applied)
    GROUP BY t.task_uuid, t.state, t.hold_failed, COALESCE(c.state, s.state)
)
SELECT 'applied' AS kind, jsonb_build_object('step_uuid', step_uuid, 'task_uuid', task_uuid, 'namespace', namespace, 'state', state) AS data
FROM applied
CROSS JOIN wake
UNION ALL
SELECT 'successor', jsonb_build_object('step_uuid', step_uuid, 'task_uuid', task_uuid, 'namespace', namespace, 'state', state)
FROM successors
UNION ALL
SELECT 'count', jsonb_build_object('task_uuid', task_uuid, 'task_state', task_state, 'hold_failed', hold_failed,
                                   'step_state', step_state, 'n', n)
FROM counts
