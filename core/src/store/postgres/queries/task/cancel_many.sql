-- Cancel tasks and their unfinished steps in one statement, and read back the
-- state of every requested task. Each UPDATE is a compare-and-swap on the states
-- `cancel` may leave (computed from the state machines in Rust); a step claimed by
-- a worker is cancelled too, and that worker's late result loses its own CAS.
-- The final SELECT sees the rows as they were before this statement, which is what
-- `state` rows report: the state of each requested task that was not cancelled now.
-- The rows to move are locked first (tasks, then their steps) so their audit rows
-- start from the state each really left; the statement writes those audit rows and
-- NOTIFYs `tasker_task_settled` for each cancelled task (ADR 0012).
-- $1: task UUIDs (uuid[]); $2: task states cancel may leave (text[]);
-- $3: step states cancel may leave (text[]); $4: now; $5: processor; $6: audit metadata (jsonb)
WITH task_from AS (
    SELECT task_uuid, state
    FROM tasks
    WHERE task_uuid = ANY($1)
      AND state = ANY($2)
    FOR UPDATE
), cancelled AS (
    UPDATE tasks AS t
    SET state = 'cancelled',
        transition_event = 'cancel',
        transition_path = NULL,
        transition_metadata = $6,
        transition_processor = $5,
        completed_at = $4,
        updated_at = $4
    FROM task_from AS f
    WHERE t.task_uuid = f.task_uuid
    RETURNING t.task_uuid, t.namespace, f.state AS old_state
), step_from AS (
    SELECT step_uuid, state
    FROM steps
    WHERE task_uuid IN (SELECT task_uuid FROM task_from)
      AND state = ANY($3)
    FOR UPDATE
), steps_cancelled AS (
    UPDATE steps AS s
    SET state = 'cancelled',
        transition_event = 'cancel',
        transition_path = NULL,
        transition_metadata = $6,
        transition_processor = $5,
        lease_expires_at = NULL,
        updated_at = $4
    FROM step_from AS f
    WHERE s.step_uuid = f.step_uuid
    RETURNING s.task_uuid, s.step_uuid, f.state AS old_state
), task_audit AS (
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT c.task_uuid, c.old_state, 'cancelled', 'cancel', $6, $5, $4
    FROM cancelled AS c
    ORDER BY c.task_uuid
), step_audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT c.step_uuid, c.task_uuid, c.old_state, 'cancelled', 'cancel', $6, $5, $4
    FROM steps_cancelled AS c
    ORDER BY c.step_uuid
), settled AS (
    SELECT count(pg_notify('tasker_task_settled', c.task_uuid::text)) AS notified
    FROM cancelled AS c
)
SELECT 'task' AS kind, c.task_uuid, c.namespace, NULL::uuid AS step_uuid, 'cancelled' AS state
FROM cancelled AS c
CROSS JOIN settled
UNION ALL
SELECT 'step', s.task_uuid, NULL, s.step_uuid, 'cancelled' FROM steps_cancelled s
UNION ALL
SELECT 'state', t.task_uuid, t.namespace, NULL, t.state FROM tasks t WHERE t.task_uuid = ANY($1)
