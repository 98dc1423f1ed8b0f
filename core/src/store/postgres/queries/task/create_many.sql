-- Create tasks in one statement: templates (once per content hash), tasks (a task
-- whose identity exists is skipped), the steps and edges of the tasks inserted, and
-- the tasks that already held a submitted identity before this statement. The
-- statement writes the creation audit rows of the tasks and steps it inserts and
-- NOTIFYs `tasker_ready` for the namespaces with enqueued steps (ADR 0012).
-- $1: templates JSON; $2: now; $3: tasks JSON; $4: processor; $5: steps JSON;
-- $6: edges JSON; $7: identity hashes JSON
WITH new_templates AS (
    INSERT INTO templates (content_hash, namespace, name, version, definition, created_at)
    SELECT t.content_hash, t.namespace, t.name, t.version, t.definition::jsonb, $2
    FROM jsonb_to_recordset($1::jsonb) AS t(content_hash text, namespace text, name text, version text, definition text)
    ON CONFLICT (content_hash) DO NOTHING
),
new_tasks AS (
    INSERT INTO tasks (task_uuid, template_hash, namespace, name, version, state, context, identity_hash,
                       correlation_id, priority, hold_failed, step_count, created_at, updated_at, completed_at,
                       transition_event, transition_path, transition_metadata, transition_processor)
    SELECT t.task_uuid, t.template_hash, t.namespace, t.name, t.version, t.state, t.context::jsonb,
           t.identity_hash, t.correlation_id, t.priority, t.hold_failed <> 0, t.step_count, $2, $2,
           CASE WHEN t.state IN ('complete', 'error') THEN $2 END,
           t.transition_event, t.transition_path::jsonb, NULL, $4
    FROM jsonb_to_recordset($3::jsonb) AS t(task_uuid uuid, template_hash text, namespace text, name text,
         version text, state text, context text, identity_hash text, correlation_id uuid, priority int,
         hold_failed int, step_count int, transition_event text, transition_path text)
    ON CONFLICT (identity_hash) DO NOTHING
    RETURNING task_uuid, identity_hash, state, transition_event, transition_path, transition_processor, updated_at
),
task_audit AS (
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.task_uuid, h.from_state, h.to_state, h.event, NULL, n.transition_processor, n.updated_at
    FROM new_tasks AS n
    CROSS JOIN LATERAL tasker_audit_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.task_uuid, h.ord
),
new_steps AS (
    INSERT INTO steps (step_uuid, task_uuid, namespace, name, template_step_name, step_type, handler_callable,
                       handler_method, handler_initialization, retry_policy, max_attempts, timeout_ms, state,
                       attempts, pending_parents, ready_at, created_at, updated_at,
                       transition_event, transition_path, transition_metadata, transition_processor)
    SELECT s.step_uuid, s.task_uuid, s.namespace, s.name, s.template_step_name, s.step_type, s.handler_callable,
           s.handler_method, s.handler_initialization::jsonb, s.retry_policy::jsonb, s.max_attempts, s.timeout_ms,
           s.state, 0, s.pending_parents, CASE WHEN s.state = 'enqueued' THEN $2 END, $2, $2,
           s.transition_event, s.transition_path::jsonb, NULL, $4
    FROM jsonb_to_recordset($5::jsonb) AS s(step_uuid uuid, task_uuid uuid, namespace text, name text,
         template_step_name text, step_type text, handler_callable text, handler_method text,
         handler_initialization text, retry_policy text, max_attempts int, timeout_ms bigint, state text,
         pending_parents int, transition_event text, transition_path text)
    WHERE s.task_uuid IN (SELECT task_uuid FROM new_tasks)
    RETURNING step_uuid, task_uuid, namespace, state, transition_event, transition_path, transition_processor,
              updated_at
),
step_audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.step_uuid, n.task_uuid, h.from_state, h.to_state, h.event, NULL, n.transition_processor, n.updated_at
    FROM new_steps AS n
    CROSS JOIN LATERAL tasker_audit_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.step_uuid, h.ord
),
wake AS (
    SELECT count(pg_notify('tasker_ready', ns)) AS notified
    FROM (SELECT DISTINCT namespace AS ns FROM new_steps WHERE state = 'enqueued') AS r
),
new_edges AS (
    INSERT INTO step_edges (task_uuid, parent_step_uuid, child_step_uuid)
    SELECT e.task_uuid, e.parent, e.child
    FROM jsonb_to_recordset($6::jsonb) AS e(task_uuid uuid, parent uuid, child uuid)
    WHERE e.child IN (SELECT step_uuid FROM new_steps)
)
SELECT 'created' AS kind, n.task_uuid, n.identity_hash, NULL::text AS state, NULL::text AS namespace
FROM new_tasks AS n
CROSS JOIN wake
UNION ALL
SELECT 'existing' AS kind, task_uuid, identity_hash, state, namespace
FROM tasks
WHERE identity_hash IN (SELECT jsonb_array_elements_text($7::jsonb))
