-- Append-only audit rows (ADR 0011). Until now every state change cleared the
-- previous row's `most_recent` flag with an UPDATE before inserting the new row:
-- a second write per transition, a dead tuple and three index entries per row.
-- Audit rows are now never updated: the newest row of an entity (highest
-- transition_id) is its most recent one, and the store derives the flag on read.
-- Each transition table keeps one index, its primary key (entity, transition_id),
-- which serves the per-entity reads in transition order. `steps_task_idx` goes too:
-- the unique (task_uuid, name) constraint already indexes steps by task.

DROP INDEX task_transitions_most_recent_unique;
DROP INDEX task_transitions_task_idx;
ALTER TABLE task_transitions DROP COLUMN most_recent;
ALTER TABLE task_transitions DROP CONSTRAINT task_transitions_pkey;
ALTER TABLE task_transitions ADD CONSTRAINT task_transitions_pkey PRIMARY KEY (task_uuid, transition_id);

DROP INDEX step_transitions_most_recent_unique;
DROP INDEX step_transitions_step_idx;
ALTER TABLE step_transitions DROP COLUMN most_recent;
ALTER TABLE step_transitions DROP CONSTRAINT step_transitions_pkey;
ALTER TABLE step_transitions ADD CONSTRAINT step_transitions_pkey PRIMARY KEY (step_uuid, transition_id);

DROP INDEX steps_task_idx;

-- The audit triggers, as in 0001 without the flag: one row per intermediate hop
-- of transition_path, then the final row, in hop order. The task update trigger
-- also NOTIFYs `tasker_task_settled` with the task's uuid when a task reaches a
-- state a waiter stops at (terminal, or blocked_by_failures), so that
-- `wait_for_task` in another process wakes at once instead of re-reading.
CREATE OR REPLACE FUNCTION tasker_audit_tasks_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at
    FROM new_rows AS n
    CROSS JOIN LATERAL tasker_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.task_uuid, h.ord;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tasker_audit_tasks_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at
    FROM new_rows AS n
    JOIN old_rows AS o ON o.task_uuid = n.task_uuid
    CROSS JOIN LATERAL tasker_hops(o.state, n.transition_path, n.state, n.transition_event) AS h
    WHERE o.state IS DISTINCT FROM n.state OR n.transition_path IS NOT NULL
    ORDER BY n.task_uuid, h.ord;
    PERFORM pg_notify('tasker_task_settled', n.task_uuid::text)
    FROM new_rows AS n JOIN old_rows AS o ON o.task_uuid = n.task_uuid
    WHERE n.state IN ('complete', 'error', 'cancelled', 'resolved_manually', 'blocked_by_failures')
      AND o.state IS DISTINCT FROM n.state;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tasker_audit_steps_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.step_uuid, n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at
    FROM new_rows AS n
    CROSS JOIN LATERAL tasker_hops(NULL, n.transition_path, n.state, n.transition_event) AS h
    ORDER BY n.step_uuid, h.ord;
    PERFORM pg_notify('tasker_ready', ns) FROM (SELECT DISTINCT namespace AS ns FROM new_rows WHERE state = 'enqueued') AS r;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION tasker_audit_steps_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT n.step_uuid, n.task_uuid, h.from_state, h.to_state, h.event, n.transition_metadata, n.transition_processor, n.updated_at
    FROM new_rows AS n
    JOIN old_rows AS o ON o.step_uuid = n.step_uuid
    CROSS JOIN LATERAL tasker_hops(o.state, n.transition_path, n.state, n.transition_event) AS h
    WHERE o.state IS DISTINCT FROM n.state OR n.transition_path IS NOT NULL
    ORDER BY n.step_uuid, h.ord;
    -- Wake-ups: steps that became claimable notify `tasker_ready` with their
    -- namespace, delivered at commit (duplicates in one transaction fold).
    PERFORM pg_notify('tasker_ready', ns)
    FROM (SELECT DISTINCT n.namespace AS ns
          FROM new_rows AS n JOIN old_rows AS o ON o.step_uuid = n.step_uuid
          WHERE n.state = 'enqueued' AND o.state IS DISTINCT FROM 'enqueued') AS r;
    RETURN NULL;
END
$$;
