-- Events after a sequence, oldest first: after ?2 when given, else after consumer
-- ?1's acknowledged sequence (0 for a new consumer); at most ?3; only names matching
-- GLOB ?4 when given (case-sensitive, as PostgreSQL's LIKE). One JSON object per event
-- (payload as JSON text).
-- ?1: consumer; ?2: after (or NULL); ?3: limit; ?4: GLOB pattern (or NULL)
SELECT json_object(
           'sequence', e.sequence, 'event_id', e.event_id, 'name', e.name, 'payload', e.payload,
           'mode', e.mode, 'task_uuid', e.task_uuid, 'step_uuid', e.step_uuid, 'step_name', e.step_name,
           'namespace', e.namespace, 'correlation_id', e.correlation_id, 'fired_at', e.fired_at) AS data
FROM domain_events AS e
WHERE e.sequence > COALESCE(?2, (SELECT c.acked_sequence FROM domain_event_consumers AS c WHERE c.consumer = ?1), 0)
  AND (?4 IS NULL OR e.name GLOB ?4)
ORDER BY e.sequence
LIMIT ?3;
