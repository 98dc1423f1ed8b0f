-- Durable events riding with a result batch, inside its transaction (after the
-- apply statement): an event is written only when its step's result was applied
-- by this batch (result token ?2) and the step's new state passes the event's
-- gate ('applied': any; 'complete': completed; 'failed': retry or error).
-- ?1: JSON array of events (store::domain_events::batch_payload); ?2: result token; ?3: now
INSERT INTO domain_events (event_id, name, payload, mode, task_uuid, step_uuid, step_name, namespace,
                           correlation_id, fired_at, stored_at)
SELECT e.value ->> '$.event_id', e.value ->> '$.name', e.value ->> '$.payload', e.value ->> '$.mode',
       e.value ->> '$.task_uuid', e.value ->> '$.step_uuid', e.value ->> '$.step_name',
       e.value ->> '$.namespace', e.value ->> '$.correlation_id', e.value ->> '$.fired_at', ?3
FROM json_each(?1) AS e
JOIN steps AS s ON s.step_uuid = e.value ->> '$.step_uuid' AND s.result_token = ?2
WHERE e.value ->> '$.gate' = 'applied'
   OR (e.value ->> '$.gate' = 'complete' AND s.state = 'complete')
   OR (e.value ->> '$.gate' = 'failed' AND s.state <> 'complete')
ORDER BY e.key
ON CONFLICT (event_id) DO NOTHING
RETURNING sequence;
