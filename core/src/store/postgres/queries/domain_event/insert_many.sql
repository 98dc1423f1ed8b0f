-- Durable events written on their own (an explicit publish that names no held
-- step), after the advisory lock, in their own transaction.
-- $1: JSON array of events (store::domain_events::immediate_payload); $2: now
INSERT INTO domain_events (event_id, name, payload, mode, task_uuid, step_uuid, step_name, namespace,
                           correlation_id, fired_at, stored_at)
SELECT (x.e ->> 'event_id')::uuid, x.e ->> 'name', (x.e ->> 'payload')::jsonb, x.e ->> 'mode',
       (x.e ->> 'task_uuid')::uuid, (x.e ->> 'step_uuid')::uuid, x.e ->> 'step_name', x.e ->> 'namespace',
       (x.e ->> 'correlation_id')::uuid, (x.e ->> 'fired_at')::bigint, $2
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, ord)
ORDER BY x.ord
ON CONFLICT (event_id) DO NOTHING
RETURNING sequence;
