-- Events after a sequence, oldest first: after $2 when given, else after consumer
-- $1's acknowledged sequence (0 for a new consumer); at most $3; only names LIKE $4
-- when given. One JSON object per event (payload as JSON text).
-- $1: consumer; $2: after (or NULL); $3: limit; $4: LIKE pattern (or NULL)
SELECT jsonb_build_object(
           'sequence', e.sequence, 'event_id', e.event_id, 'name', e.name, 'payload', e.payload::text,
           'mode', e.mode, 'task_uuid', e.task_uuid, 'step_uuid', e.step_uuid, 'step_name', e.step_name,
           'namespace', e.namespace, 'correlation_id', e.correlation_id, 'fired_at', e.fired_at) AS data
FROM domain_events AS e
WHERE e.sequence > COALESCE($2::bigint,
                            (SELECT c.acked_sequence FROM domain_event_consumers AS c WHERE c.consumer = $1), 0)
  AND ($4::text IS NULL OR e.name LIKE $4 ESCAPE '\')
ORDER BY e.sequence
LIMIT $3;
