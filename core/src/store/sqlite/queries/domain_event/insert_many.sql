-- Durable events written on their own (an explicit publish that names no held step).
-- ?1: JSON array of events (store::domain_events::immediate_payload); ?2: now
INSERT INTO domain_events (event_id, name, payload, mode, task_uuid, step_uuid, step_name, namespace,
                           correlation_id, fired_at, stored_at)
SELECT e.value ->> '$.event_id', e.value ->> '$.name', e.value ->> '$.payload', e.value ->> '$.mode',
       e.value ->> '$.task_uuid', e.value ->> '$.step_uuid', e.value ->> '$.step_name',
       e.value ->> '$.namespace', e.value ->> '$.correlation_id', e.value ->> '$.fired_at', ?2
FROM json_each(?1) AS e
WHERE true -- (lets SQLite parse the ON CONFLICT clause)
ORDER BY e.key
ON CONFLICT (event_id) DO NOTHING
RETURNING sequence;
