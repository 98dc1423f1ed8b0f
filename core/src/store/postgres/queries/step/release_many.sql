-- Hand claimed steps back to the queue; the attempt the claim counted is returned.
-- Writes the audit rows and NOTIFYs `tasker_ready` for the namespaces (ADR 0012).
-- $1: claims JSON [{step_uuid, claim_seq}]; $2: now; $3: processor; $4: event; $5: metadata
WITH released AS (
    UPDATE steps AS s
    SET state = 'enqueued',
        transition_event = $4,
        transition_path = NULL,
        transition_metadata = $5::jsonb,
        transition_processor = $3,
        attempts = s.attempts - 1,
        claimed_by = NULL,
        lease_expires_at = NULL,
        deadline_at = NULL,
        ready_at = $2,
        updated_at = $2
    FROM jsonb_to_recordset($1::jsonb) AS h(step_uuid uuid, claim_seq bigint)
    WHERE s.step_uuid = h.step_uuid
      AND s.state = 'in_progress'
      AND s.claim_seq = h.claim_seq
    RETURNING s.step_uuid, s.task_uuid, s.namespace, s.state, s.transition_event, s.transition_metadata,
              s.transition_processor, s.updated_at
),
audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT r.step_uuid, r.task_uuid, 'in_progress', r.state, r.transition_event, r.transition_metadata,
           r.transition_processor, r.updated_at
    FROM released AS r
    ORDER BY r.step_uuid
),
wake AS (
    SELECT count(pg_notify('tasker_ready', ns)) AS notified
    FROM (SELECT DISTINCT namespace AS ns FROM released) AS r
)
SELECT r.step_uuid
FROM released AS r
CROSS JOIN wake
