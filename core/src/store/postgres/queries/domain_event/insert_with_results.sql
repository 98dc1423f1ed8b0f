-- Durable events riding with a result batch, inside its transaction (after the
-- apply statement, after the advisory lock that keeps sequences in commit order):
-- an event is written only when its step's result was applied by this batch
-- (result token $2) and the step's new state passes the event's gate ('applied':
-- any; 'complete': completed; 'failed': retry or error).
-- $1: JSON array of events (store::domain_events::batch_payload); $2: result token; $3: now
INSERT INTO domain_events (event_id, name, payload, mode, task_uuid, step_uuid, step_name, namespace,
                           correlation_id, fired_at, stored_at)
SELECT (x.e ->> 'event_id')::uuid, x.e ->> 'name', (x.e ->> 'payload')::jsonb, x.e ->> 'mode',
       (x.e ->> 'task_uuid')::uuid, (x.e ->> 'step_uuid')::uuid, x.e ->> 'step_name', x.e ->> 'namespace',
       (x.e ->> 'correlation_id')::uuid, (x.e ->> 'fired_at')::bigint, $3
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, ord)
JOIN steps AS s ON s.step_uuid = (x.e ->> 'step_uuid')::uuid AND s.result_token = $2
WHERE x.e ->> 'gate' = 'applied'
   OR (x.e ->> 'gate' = 'complete' AND s.state = 'complete')
   OR (x.e ->> 'gate' = 'failed' AND s.state <> 'complete')
ORDER BY x.ord
ON CONFLICT (event_id) DO NOTHING
RETURNING sequence;
