-- Claim up to ?3 ready steps of namespace ?1 in one statement: enqueued steps, and
-- steps whose retry delay has passed (those pass through pending and enqueued, as
-- ?7 records). Steps of tasks that are no longer running are never claimed.
-- ?1: namespace; ?2: now; ?3: limit; ?4: lease end; ?5: worker id;
-- ?6: audit metadata (JSON text); ?7: transition path for retried steps (JSON text)
UPDATE steps
SET state = 'in_progress',
    transition_event = 'start',
    transition_path = CASE WHEN state = 'waiting_for_retry' THEN ?7 END,
    transition_metadata = ?6,
    transition_processor = ?5,
    attempts = attempts + 1,
    claim_seq = claim_seq + 1,
    claimed_by = ?5,
    lease_expires_at = MIN(?4, ?2 + timeout_ms),
    deadline_at = ?2 + timeout_ms,
    started_at = ?2,
    ready_at = NULL,
    updated_at = ?2
WHERE step_uuid IN (
    SELECT s.step_uuid
    FROM steps AS s
    WHERE s.namespace = ?1
      AND s.state IN ('enqueued', 'waiting_for_retry')
      AND s.ready_at <= ?2
      AND EXISTS (SELECT 1 FROM tasks AS t
                  WHERE t.task_uuid = s.task_uuid
                    AND t.state IN ('steps_in_process', 'waiting_for_retry', 'evaluating_results', 'enqueuing_steps'))
    ORDER BY s.ready_at
    LIMIT ?3
)
RETURNING step_uuid, task_uuid, claim_seq, name, template_step_name, namespace, step_type, handler_callable,
          handler_method, handler_initialization, retry_policy, timeout_ms, attempts, lease_expires_at,
          deadline_at, checkpoint, transition_path IS NOT NULL AS was_retry
