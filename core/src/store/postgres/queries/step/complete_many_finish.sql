-- Second half of a result batch: move the touched tasks on, each only from the
-- state its plan expects (compare-and-swap), and, for eager dispatch, claim up to
-- $6 of the successors this transaction enqueued in the worker's namespaces ($6 = 0:
-- none), returning them hydrated as a claim does.
-- $1: plans JSON; $2: now; $3: processor; $4: successor step uuids; $5: namespaces;
-- $6: limit; $7: lease end; $8: worker id; $9: audit metadata; $10: claim token
-- Both moves write their audit rows here, and a task that settles NOTIFYs
-- `tasker_task_settled` with its uuid (ADR 0012).
WITH plans AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS p(task_uuid uuid, expected text, state text, event text, path text)
),
moved AS (
    UPDATE tasks AS t
    SET state = p.state,
        transition_event = p.event,
        transition_path = p.path::jsonb,
        transition_metadata = NULL,
        transition_processor = $3,
        completed_at = CASE WHEN p.state IN ('complete', 'error', 'cancelled', 'resolved_manually')
                            THEN $2 ELSE t.completed_at END,
        updated_at = $2
    FROM plans AS p
    WHERE t.task_uuid = p.task_uuid
      AND t.state = p.expected
    RETURNING t.task_uuid, p.expected AS old_state, t.state, t.transition_event, t.transition_path,
              t.transition_metadata, t.transition_processor, t.updated_at
),
task_audit AS (
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT m.task_uuid, h.from_state, h.to_state, h.event, m.transition_metadata, m.transition_processor, m.updated_at
    FROM moved AS m
    CROSS JOIN LATERAL tasker_audit_hops(m.old_state, m.transition_path, m.state, m.transition_event) AS h
    WHERE m.old_state IS DISTINCT FROM m.state OR m.transition_path IS NOT NULL
    ORDER BY m.task_uuid, h.ord
),
settled AS (
    SELECT count(pg_notify('tasker_task_settled', m.task_uuid::text)) AS notified
    FROM moved AS m
    WHERE m.state IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures')
      AND m.old_state IS DISTINCT FROM m.state
),
ready AS (
    SELECT s.step_uuid
    FROM steps AS s
    WHERE s.step_uuid = ANY($4::uuid[])
      AND s.state = 'enqueued'
      AND s.namespace = ANY($5::text[])
    ORDER BY s.ready_at
    LIMIT $6
    FOR UPDATE OF s SKIP LOCKED
),
claimed AS (
    UPDATE steps AS s
    SET state = 'in_progress',
        transition_event = 'start',
        transition_path = NULL,
        transition_metadata = $9::jsonb,
        transition_processor = $8,
        attempts = s.attempts + 1,
        claim_seq = s.claim_seq + 1,
        claimed_by = $8,
        claim_token = $10,
        lease_expires_at = LEAST($7, $2 + s.timeout_ms),
        deadline_at = $2 + s.timeout_ms,
        started_at = $2,
        ready_at = NULL,
        updated_at = $2
    FROM ready
    WHERE s.step_uuid = ready.step_uuid
    RETURNING s.*
),
step_audit AS (
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT c.step_uuid, c.task_uuid, 'enqueued', c.state, c.transition_event, c.transition_metadata,
           c.transition_processor, c.updated_at
    FROM claimed AS c
    ORDER BY c.step_uuid
)
SELECT 'task' AS kind, jsonb_build_object('task_uuid', task_uuid, 'state', state) AS data
FROM moved
CROSS JOIN settled
UNION ALL
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
)
FROM claimed AS c
JOIN tasks AS t ON t.task_uuid = c.task_uuid
