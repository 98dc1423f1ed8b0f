-- Audit rows of a step, oldest first. ?1: step uuid
SELECT transition_id, from_state, to_state, event, metadata, processor, created_at,
       transition_id = MAX(transition_id) OVER () AS most_recent
FROM step_transitions
WHERE step_uuid = ?1
ORDER BY transition_id
