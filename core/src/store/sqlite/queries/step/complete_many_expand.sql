-- Write the steps that decision and batch outcomes create (planned in Rust from
-- complete_many_expand_read.sql), before the results are applied: this script is
-- sent with complete_many_apply.sql appended, whose first statement completes the
-- expanding steps and whose second enqueues the created steps left with nothing
-- to wait for (they all wait for the expanding step, at least):
--  1. the created steps, `pending`, each with its creation audit row;
--  2. their edges, and the new edges into existing steps;
--  3. existing pending steps that gained parents wait for that many more;
--  4. each task's step_count grows by the steps created for it.
-- ?1, ?4: used by complete_many_apply.sql; ?2: now; ?3: processor;
-- ?5: JSON {steps: [step rows], edges: [{task_uuid, parent, child}],
--          bumps: [{step_uuid, added}], tasks: [{task_uuid, added}]}
WITH unused_parameters AS (SELECT ?1, ?4)
INSERT INTO steps (step_uuid, task_uuid, namespace, name, template_step_name, step_type, handler_callable,
                   handler_method, handler_initialization, retry_policy, max_attempts, timeout_ms, state,
                   attempts, pending_parents, ready_at, created_at, updated_at,
                   transition_event, transition_path, transition_metadata, transition_processor)
SELECT s.value ->> '$.step_uuid', s.value ->> '$.task_uuid', s.value ->> '$.namespace', s.value ->> '$.name',
       s.value ->> '$.template_step_name', s.value ->> '$.step_type', s.value ->> '$.handler_callable',
       s.value ->> '$.handler_method', s.value ->> '$.handler_initialization', s.value ->> '$.retry_policy',
       s.value ->> '$.max_attempts', s.value ->> '$.timeout_ms', s.value ->> '$.state', 0,
       s.value ->> '$.pending_parents', NULL, ?2, ?2,
       s.value ->> '$.transition_event', s.value ->> '$.transition_path', NULL, ?3
FROM json_each(?5, '$.steps') AS s;

WITH unused_parameters AS (SELECT ?1, ?2, ?3, ?4)
INSERT INTO step_edges (task_uuid, parent_step_uuid, child_step_uuid)
SELECT e.value ->> '$.task_uuid', e.value ->> '$.parent', e.value ->> '$.child'
FROM json_each(?5, '$.edges') AS e;

WITH unused_parameters AS (SELECT ?1, ?3, ?4)
UPDATE steps
SET pending_parents = steps.pending_parents + b.added,
    updated_at = ?2
FROM (SELECT x.value ->> '$.step_uuid' AS step_uuid, x.value ->> '$.added' AS added
      FROM json_each(?5, '$.bumps') AS x) AS b
WHERE steps.step_uuid = b.step_uuid
  AND steps.state = 'pending';

WITH unused_parameters AS (SELECT ?1, ?3, ?4)
UPDATE tasks
SET step_count = tasks.step_count + a.added,
    updated_at = ?2
FROM (SELECT x.value ->> '$.task_uuid' AS task_uuid, x.value ->> '$.added' AS added
      FROM json_each(?5, '$.tasks') AS x) AS a
WHERE tasks.task_uuid = a.task_uuid;
