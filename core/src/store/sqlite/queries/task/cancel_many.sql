-- Cancel tasks and their unfinished steps in one transaction, then read back the
-- state of every requested task. Each UPDATE is a compare-and-swap on the states
-- `cancel` may leave (computed from the state machines in Rust); a step claimed by
-- a worker is cancelled too, and that worker's late result loses its own CAS.
-- ?1: JSON array of task UUIDs; ?2: JSON array of task states cancel may leave;
-- ?3: JSON array of step states cancel may leave; ?4: now; ?5: processor;
-- ?6: audit metadata (JSON text)
BEGIN IMMEDIATE;

WITH unused_parameters AS (SELECT ?3)
UPDATE tasks
SET state = 'cancelled',
    transition_event = 'cancel',
    transition_path = NULL,
    transition_metadata = ?6,
    transition_processor = ?5,
    completed_at = ?4,
    updated_at = ?4
WHERE task_uuid IN (SELECT value FROM json_each(?1))
  AND state IN (SELECT value FROM json_each(?2))
RETURNING 'task' AS kind, task_uuid, namespace, NULL AS step_uuid, state;

WITH unused_parameters AS (SELECT ?2)
UPDATE steps
SET state = 'cancelled',
    transition_event = 'cancel',
    transition_path = NULL,
    transition_metadata = ?6,
    transition_processor = ?5,
    lease_expires_at = NULL,
    updated_at = ?4
WHERE task_uuid IN (SELECT task_uuid FROM tasks
                    WHERE task_uuid IN (SELECT value FROM json_each(?1)) AND state = 'cancelled')
  AND state IN (SELECT value FROM json_each(?3))
RETURNING 'step' AS kind, task_uuid, NULL AS namespace, step_uuid, state;

WITH unused_parameters AS (SELECT ?2, ?3, ?4, ?5, ?6)
SELECT 'state' AS kind, task_uuid, namespace, NULL AS step_uuid, state
FROM tasks, unused_parameters
WHERE task_uuid IN (SELECT value FROM json_each(?1));

COMMIT;
