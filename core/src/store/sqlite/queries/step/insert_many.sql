-- Insert the steps of new tasks; roots arrive as 'enqueued', the rest as 'pending'.
-- ?1: JSON array of step objects; ?2: now; ?3: processor
INSERT INTO steps (step_uuid, task_uuid, namespace, name, template_step_name, step_type, handler_callable,
                   handler_method, handler_initialization, retry_policy, max_attempts, timeout_ms, state,
                   attempts, pending_parents, ready_at, created_at, updated_at,
                   transition_event, transition_path, transition_metadata, transition_processor)
SELECT s.value ->> '$.step_uuid', s.value ->> '$.task_uuid', s.value ->> '$.namespace', s.value ->> '$.name',
       s.value ->> '$.template_step_name', s.value ->> '$.step_type', s.value ->> '$.handler_callable',
       s.value ->> '$.handler_method', s.value ->> '$.handler_initialization', s.value ->> '$.retry_policy',
       s.value ->> '$.max_attempts', s.value ->> '$.timeout_ms', s.value ->> '$.state', 0,
       s.value ->> '$.pending_parents', CASE WHEN s.value ->> '$.state' = 'enqueued' THEN ?2 END, ?2, ?2,
       s.value ->> '$.transition_event', s.value ->> '$.transition_path', NULL, ?3
FROM json_each(?1) AS s
