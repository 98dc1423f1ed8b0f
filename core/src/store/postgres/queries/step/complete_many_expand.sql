-- Write the steps that decision and batch outcomes create (planned in Rust from
-- complete_many_expand_read.sql), before complete_many_apply.sql applies the
-- results: that statement completes the expanding steps and enqueues the created
-- steps left with nothing to wait for (they all wait for the expanding step).
--  1. the created steps, `pending`, each with its creation audit row (ADR 0012);
--  2. their edges, and the new edges into existing steps (checked at the end of
--     the statement, when the new steps exist);
--  3. each task's step_count grows by the steps created for it (its row keeps its
--     state, so no audit row).
-- Existing pending steps that gained parents are bumped by
-- complete_many_expand_bump.sql, run only when there are any.
-- $1: JSON {steps: [step rows], edges: [{task_uuid, parent, child}],
--          bumps: [{step_uuid, added}], tasks: [{task_uuid, added}]}; $2: now; $3: processor
WITH doc AS (
    SELECT $1::jsonb AS x
),
new_steps AS (
    INSERT INTO steps (step_uuid, task_uuid, namespace, name, template_step_name, step_type, handler_callable,
                       handler_method, handler_initialization, retry_policy, max_attempts, timeout_ms, state,
                       attempts, pending_parents, ready_at, created_at, updated_at,
                       transition_event, transition_path, transition_metadata, transition_processor)
    SELECT s.step_uuid, s.task_uuid, s.namespace, s.name, s.template_step_name, s.step_type, s.handler_callable,
           s.handler_method, s.handler_initialization::jsonb, s.retry_policy::jsonb, s.max_attempts, s.timeout_ms,
           s.state, 0, s.pending_parents, NULL, $2, $2,
           s.transition_event, s.transition_path::jsonb, NULL, $3
    FROM doc, jsonb_to_recordset(doc.x -> 'steps') AS s(step_uuid uuid, task_uuid uuid, namespace text, name text,
         template_step_name text, step_type text, handler_callable text, handler_method text,
         handler_initialization text, retry_policy text, max_attempts int, timeout_ms bigint, state text,
         pending_parents int, transition_event text, transition_path text)
    RETURNING step_uuid, task_uuid, state, transition_event, transition_path, transition_metadata,
              transition_processor, updated_at
),
step_audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.step_uuid, n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor,
           n.updated_at
    FROM new_steps AS n
    CROSS JOIN LATERAL tasker_audit_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.step_uuid, h.ord
),
new_edges AS (
    INSERT INTO step_edges (task_uuid, parent_step_uuid, child_step_uuid)
    SELECT e.task_uuid, e.parent, e.child
    FROM doc, jsonb_to_recordset(doc.x -> 'edges') AS e(task_uuid uuid, parent uuid, child uuid)
    RETURNING child_step_uuid
),
counted AS (
    UPDATE tasks AS t
    SET step_count = t.step_count + a.added,
        updated_at = $2
    FROM doc, jsonb_to_recordset(doc.x -> 'tasks') AS a(task_uuid uuid, added int)
    WHERE t.task_uuid = a.task_uuid
    RETURNING t.task_uuid
)
SELECT (SELECT count(*) FROM new_steps) AS steps, (SELECT count(*) FROM new_edges) AS edges,
       (SELECT count(*) FROM counted) AS tasks
