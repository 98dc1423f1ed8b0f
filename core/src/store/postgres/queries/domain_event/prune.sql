-- Delete durable events stored before $1, oldest first, at most $3; when $2, only
-- those every known consumer has acknowledged (none while no consumer is known).
-- Sequences are never reused, so consumers' offsets stay valid. Answers the
-- deleted sequences.
-- $1: stored before; $2: acknowledged only; $3: limit
WITH doomed AS (
    SELECT e.sequence
    FROM domain_events AS e
    WHERE e.stored_at < $1
      AND (NOT $2 OR e.sequence <= (SELECT min(c.acked_sequence) FROM domain_event_consumers AS c))
    ORDER BY e.sequence
    LIMIT $3
)
DELETE FROM domain_events AS e
USING doomed AS d
WHERE e.sequence = d.sequence
RETURNING e.sequence
