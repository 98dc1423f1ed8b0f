-- Insert new tasks; a task whose identity hash exists is skipped (not returned).
-- ?1: JSON array of task objects (JSON payloads as text); ?2: now; ?3: processor
INSERT INTO tasks (task_uuid, template_hash, namespace, name, version, state, context, identity_hash,
                   correlation_id, priority, hold_failed, step_count, created_at, updated_at, completed_at,
                   transition_event, transition_path, transition_metadata, transition_processor)
SELECT t.value ->> '$.task_uuid', t.value ->> '$.template_hash', t.value ->> '$.namespace',
       t.value ->> '$.name', t.value ->> '$.version', t.value ->> '$.state', t.value ->> '$.context',
       t.value ->> '$.identity_hash', t.value ->> '$.correlation_id', t.value ->> '$.priority',
       t.value ->> '$.hold_failed', t.value ->> '$.step_count', ?2, ?2,
       CASE WHEN t.value ->> '$.state' IN ('complete', 'error') THEN ?2 END,
       t.value ->> '$.transition_event', t.value ->> '$.transition_path', NULL, ?3
FROM json_each(?1) AS t
WHERE true
ON CONFLICT (identity_hash) DO NOTHING
RETURNING task_uuid
