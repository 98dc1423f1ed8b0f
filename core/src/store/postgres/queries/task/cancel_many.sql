-- Cancel tasks and their unfinished steps in one statement, and read back the
-- state of every requested task. Each UPDATE is a compare-and-swap on the states
-- `cancel` may leave (computed from the state machines in Rust); a step claimed by
-- a worker is cancelled too, and that worker's late result loses its own CAS.
-- The final SELECT sees the rows as they were before this statement, which is what
-- `state` rows report: the state of each requested task that was not cancelled now.
-- $1: task UUIDs (uuid[]); $2: task states cancel may leave (text[]);
-- $3: step states cancel may leave (text[]); $4: now; $5: processor; $6: audit metadata (jsonb)
WITH cancelled AS (
    UPDATE tasks
    SET state = 'cancelled',
        transition_event = 'cancel',
        transition_path = NULL,
        transition_metadata = $6,
        transition_processor = $5,
        completed_at = $4,
        updated_at = $4
    WHERE task_uuid = ANY($1)
      AND state = ANY($2)
    RETURNING task_uuid, namespace
), steps_cancelled AS (
    UPDATE steps
    SET state = 'cancelled',
        transition_event = 'cancel',
        transition_path = NULL,
        transition_metadata = $6,
        transition_processor = $5,
        lease_expires_at = NULL,
        updated_at = $4
    WHERE task_uuid IN (SELECT task_uuid FROM cancelled)
      AND state = ANY($3)
    RETURNING task_uuid, step_uuid
)
SELECT 'task' AS kind, c.task_uuid, c.namespace, NULL::uuid AS step_uuid, 'cancelled' AS state FROM cancelled c
UNION ALL
SELECT 'step', s.task_uuid, NULL, s.step_uuid, 'cancelled' FROM steps_cancelled s
UNION ALL
SELECT 'state', t.task_uuid, t.namespace, NULL, t.state FROM tasks t WHERE t.task_uuid = ANY($1)
