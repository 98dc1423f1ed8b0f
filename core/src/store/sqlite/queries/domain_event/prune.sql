-- Delete durable events stored before ?1, oldest first, at most ?3; when ?2 is 1,
-- only those every known consumer has acknowledged (none while no consumer is
-- known). Sequences are never reused (AUTOINCREMENT), so offsets stay valid.
-- Answers the deleted sequences.
-- ?1: stored before; ?2: acknowledged only (0/1); ?3: limit
DELETE FROM domain_events
WHERE sequence IN (
    SELECT e.sequence
    FROM domain_events AS e
    WHERE e.stored_at < ?1
      AND (?2 = 0 OR e.sequence <= (SELECT min(c.acked_sequence) FROM domain_event_consumers AS c))
    ORDER BY e.sequence
    LIMIT ?3
)
RETURNING sequence;
