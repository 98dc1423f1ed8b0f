-- Claim up to $3 ready steps of namespace $1 in one statement: lock them with
-- FOR UPDATE SKIP LOCKED (concurrent claimers take different rows), move them to
-- in_progress (a retried step passes through pending and enqueued, as $7 records),
-- resume their tasks resting in waiting_for_retry, and return each claimed step
-- hydrated with its task and its parents' results, as one JSON object per row.
-- Lock order: this statement holds step rows when it reaches the tasks, the
-- opposite of every other writer (cancel, results, the DLQ sweep lock the task,
-- then its steps). So it never waits for a task row: a task another transaction
-- holds is skipped (SKIP LOCKED) and stays in waiting_for_retry while its step
-- runs; the TaskFinalizer moves it on from there when the result arrives
-- (`results_received`), and a cancel that held it cancels the claimed step too.
-- $1: namespace; $2: now; $3: limit; $4: lease end; $5: worker id; $6: audit metadata;
-- $7: transition path for retried steps; $8: claim token; $9: task path; $10: task event
-- The statement writes its own audit rows (ADR 0012). It commits without waiting for
-- the WAL flush (synchronous_commit off for this transaction only): a claim lost in a
-- server crash leaves its step claimable again, as an expired lease does, and the
-- result of the attempt, written later with a synchronous commit, flushes the claim
-- before it (ADR 0012).
WITH async_commit AS (
    SELECT set_config('synchronous_commit', 'off', true) AS setting
),
ready AS (
    SELECT s.step_uuid, s.state AS old_state
    FROM steps AS s
    WHERE s.namespace = $1
      AND s.state IN ('enqueued', 'waiting_for_retry')
      AND s.ready_at <= $2
      AND EXISTS (SELECT 1 FROM tasks AS t
                  WHERE t.task_uuid = s.task_uuid
                    AND t.state IN ('steps_in_process', 'waiting_for_retry', 'evaluating_results', 'enqueuing_steps'))
    ORDER BY s.ready_at
    LIMIT $3
    FOR UPDATE OF s SKIP LOCKED
),
claimed AS (
    UPDATE steps AS s
    SET state = 'in_progress',
        transition_event = 'start',
        transition_path = CASE WHEN s.state = 'waiting_for_retry' THEN $7::jsonb END,
        transition_metadata = $6::jsonb,
        transition_processor = $5,
        attempts = s.attempts + 1,
        claim_seq = s.claim_seq + 1,
        claimed_by = $5,
        claim_token = $8,
        lease_expires_at = LEAST($4, $2 + s.timeout_ms),
        deadline_at = $2 + s.timeout_ms,
        started_at = $2,
        ready_at = NULL,
        updated_at = $2
    FROM ready
    WHERE s.step_uuid = ready.step_uuid
    RETURNING s.*, ready.old_state
),
step_audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT c.step_uuid, c.task_uuid, h.from_state, h.to_state, h.event, c.transition_metadata, c.transition_processor,
           c.updated_at
    FROM claimed AS c
    CROSS JOIN LATERAL tasker_audit_hops(c.old_state, c.transition_path, c.state, c.transition_event) AS h
    ORDER BY c.step_uuid, h.ord
),
resumed AS (
    UPDATE tasks AS t
    SET state = 'steps_in_process',
        transition_event = $10,
        transition_path = $9::jsonb,
        transition_metadata = NULL,
        transition_processor = $5,
        updated_at = $2
    WHERE t.task_uuid IN (SELECT r.task_uuid
                          FROM tasks AS r
                          WHERE r.state = 'waiting_for_retry'
                            AND r.task_uuid IN (SELECT c.task_uuid FROM claimed AS c
                                                WHERE c.transition_path IS NOT NULL)
                          FOR UPDATE OF r SKIP LOCKED)
      AND t.state = 'waiting_for_retry'
    RETURNING t.task_uuid, t.state, t.transition_event, t.transition_path, t.transition_metadata,
              t.transition_processor, t.updated_at
),
task_audit AS (
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT r.task_uuid, h.from_state, h.to_state, h.event, r.transition_metadata, r.transition_processor, r.updated_at
    FROM resumed AS r
    CROSS JOIN LATERAL tasker_audit_hops('waiting_for_retry', r.transition_path, r.state, r.transition_event) AS h
    ORDER BY r.task_uuid, h.ord
)
SELECT 'step' AS kind, jsonb_build_object(
    'step_uuid', c.step_uuid, 'task_uuid', c.task_uuid, 'claim_seq', c.claim_seq, 'name', c.name,
    'template_step_name', c.template_step_name, 'namespace', c.namespace,
    'task_namespace', t.namespace, 'task_name', t.name,
    'task_version', t.version, 'step_type', c.step_type, 'handler_callable', c.handler_callable,
    'handler_method', c.handler_method, 'handler_initialization', c.handler_initialization,
    'retry', c.retry_policy, 'timeout_ms', c.timeout_ms, 'attempt', c.attempts,
    'lease_expires_at', c.lease_expires_at, 'deadline_at', c.deadline_at, 'checkpoint', c.checkpoint,
    'context', t.context, 'correlation_id', t.correlation_id,
    'dependency_results', (SELECT COALESCE(jsonb_object_agg(p.name, p.result), '{}'::jsonb)
                           FROM step_edges AS e JOIN steps AS p ON p.step_uuid = e.parent_step_uuid
                           WHERE e.child_step_uuid = c.step_uuid)
) AS data
FROM claimed AS c
JOIN tasks AS t ON t.task_uuid = c.task_uuid
CROSS JOIN async_commit
