-- Consumer ?1 has handled every event up to sequence ?2: its offset moves there,
-- never back. Answers the offset now stored.
-- ?1: consumer; ?2: sequence; ?3: now
INSERT INTO domain_event_consumers (consumer, acked_sequence, updated_at)
VALUES (?1, ?2, ?3)
ON CONFLICT (consumer) DO UPDATE
SET acked_sequence = MAX(domain_event_consumers.acked_sequence, excluded.acked_sequence),
    updated_at = excluded.updated_at
RETURNING acked_sequence;
