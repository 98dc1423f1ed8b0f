-- Audit rows written by the statements that change state (ADR 0012), PostgreSQL only.
-- Until now statement-level AFTER triggers on tasks and steps wrote the audit rows
-- and sent the wake-up NOTIFYs. Each firing cost ~100 µs on top of the write
-- (the plpgsql call, its transition tables, a hop expansion planned per call),
-- and it fired for every UPDATE, including the ones that change no state (lease
-- extensions, heartbeats, checkpoints). Every statement that changes a state now
-- inserts its own audit rows in a CTE and calls pg_notify itself, so the triggers go.
-- The rows' transition_* columns still describe the write (the statement reads
-- them back to build its audit rows).

DROP TRIGGER tasks_audit_insert ON tasks;
DROP TRIGGER tasks_audit_update ON tasks;
DROP TRIGGER steps_audit_insert ON steps;
DROP TRIGGER steps_audit_update ON steps;
DROP FUNCTION tasker_audit_tasks_insert();
DROP FUNCTION tasker_audit_tasks_update();
DROP FUNCTION tasker_audit_steps_insert();
DROP FUNCTION tasker_audit_steps_update();
DROP FUNCTION tasker_hops(text, jsonb, text, text);

-- The audit rows of one write: each intermediate {"to", "event"} hop of `path` (in
-- order, ord 1, 2, ...), then the final hop to `new_state` (ord 1000000), each
-- starting where the previous one ended (the first from `old_state`). A write with no
-- path has one hop. Callers order their inserts by (entity, ord) so that
-- transition_id follows the hops.
CREATE FUNCTION tasker_audit_hops(old_state text, path jsonb, new_state text, new_event text)
RETURNS TABLE (ord bigint, from_state text, to_state text, event text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT p.ord,
           CASE WHEN p.ord = 1 THEN old_state ELSE path -> (p.ord::int - 2) ->> 'to' END,
           p.value ->> 'to',
           p.value ->> 'event'
    FROM jsonb_array_elements(path) WITH ORDINALITY AS p(value, ord)
    UNION ALL
    SELECT 1000000, COALESCE(path -> -1 ->> 'to', old_state), new_state, new_event
$$;
