-- Create tasks in ONE round trip (a script run as a single transaction):
-- templates (once per content hash), tasks (a task whose identity hash exists is
-- skipped), their steps and edges (only for tasks actually inserted: a skipped
-- duplicate's fresh uuid is not in `tasks`), then the task holding each identity.
-- ?1: templates JSON; ?2: now; ?3: tasks JSON; ?4: processor; ?5: steps JSON;
-- ?6: edges JSON; ?7: identity hashes JSON
BEGIN IMMEDIATE;

INSERT INTO templates (content_hash, namespace, name, version, definition, created_at)
SELECT t.value ->> '$.content_hash', t.value ->> '$.namespace', t.value ->> '$.name',
       t.value ->> '$.version', t.value ->> '$.definition', ?2
FROM json_each(?1) AS t
WHERE true
ON CONFLICT (content_hash) DO NOTHING;

WITH unused_parameters AS (SELECT ?1)
INSERT INTO tasks (task_uuid, template_hash, namespace, name, version, state, context, identity_hash,
                   correlation_id, priority, hold_failed, step_count, created_at, updated_at, completed_at,
                   transition_event, transition_path, transition_metadata, transition_processor)
SELECT t.value ->> '$.task_uuid', t.value ->> '$.template_hash', t.value ->> '$.namespace',
       t.value ->> '$.name', t.value ->> '$.version', t.value ->> '$.state', t.value ->> '$.context',
       t.value ->> '$.identity_hash', t.value ->> '$.correlation_id', t.value ->> '$.priority',
       t.value ->> '$.hold_failed', t.value ->> '$.step_count', ?2, ?2,
       CASE WHEN t.value ->> '$.state' IN ('complete', 'error') THEN ?2 END,
       t.value ->> '$.transition_event', t.value ->> '$.transition_path', NULL, ?4
FROM json_each(?3) AS t
WHERE true
ON CONFLICT (identity_hash) DO NOTHING
RETURNING 'created' AS kind, task_uuid;

WITH unused_parameters AS (SELECT ?1, ?3)
INSERT INTO steps (step_uuid, task_uuid, namespace, name, template_step_name, step_type, handler_callable,
                   handler_method, handler_initialization, retry_policy, max_attempts, timeout_ms, state,
                   attempts, pending_parents, ready_at, created_at, updated_at,
                   transition_event, transition_path, transition_metadata, transition_processor)
SELECT s.value ->> '$.step_uuid', s.value ->> '$.task_uuid', s.value ->> '$.namespace', s.value ->> '$.name',
       s.value ->> '$.template_step_name', s.value ->> '$.step_type', s.value ->> '$.handler_callable',
       s.value ->> '$.handler_method', s.value ->> '$.handler_initialization', s.value ->> '$.retry_policy',
       s.value ->> '$.max_attempts', s.value ->> '$.timeout_ms', s.value ->> '$.state', 0,
       s.value ->> '$.pending_parents', CASE WHEN s.value ->> '$.state' = 'enqueued' THEN ?2 END, ?2, ?2,
       s.value ->> '$.transition_event', s.value ->> '$.transition_path', NULL, ?4
FROM json_each(?5) AS s
WHERE EXISTS (SELECT 1 FROM tasks AS t WHERE t.task_uuid = s.value ->> '$.task_uuid');

WITH unused_parameters AS (SELECT ?1, ?2, ?3, ?4, ?5)
INSERT INTO step_edges (task_uuid, parent_step_uuid, child_step_uuid)
SELECT e.value ->> '$.task_uuid', e.value ->> '$.parent', e.value ->> '$.child'
FROM json_each(?6) AS e
WHERE EXISTS (SELECT 1 FROM steps AS s WHERE s.step_uuid = e.value ->> '$.child');

WITH unused_parameters AS (SELECT ?1, ?2, ?3, ?4, ?5, ?6)
SELECT 'existing' AS kind, task_uuid, identity_hash, state, namespace
FROM tasks
WHERE identity_hash IN (SELECT value FROM json_each(?7));

COMMIT;
