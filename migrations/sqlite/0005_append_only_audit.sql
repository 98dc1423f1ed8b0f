-- Append-only audit rows (ADR 0011). Until now every state change cleared the
-- previous row's `most_recent` flag with an UPDATE before inserting the new row.
-- Audit rows are now never updated: the newest row of an entity (highest
-- transition_id) is its most recent one, and the store derives the flag on read.

DROP TRIGGER tasks_audit_insert;
DROP TRIGGER tasks_audit_update;
DROP TRIGGER steps_audit_insert;
DROP TRIGGER steps_audit_update;
DROP INDEX task_transitions_most_recent_unique;
DROP INDEX step_transitions_most_recent_unique;
ALTER TABLE task_transitions DROP COLUMN most_recent;
ALTER TABLE step_transitions DROP COLUMN most_recent;

-- The audit triggers, as in 0001 without the flag: one row per intermediate hop
-- of transition_path, then the final row, in hop order.
CREATE TRIGGER tasks_audit_insert AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN NULL ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    VALUES (NEW.task_uuid, json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at);
END;

CREATE TRIGGER tasks_audit_update AFTER UPDATE OF state ON tasks
WHEN OLD.state IS NOT NEW.state OR NEW.transition_path IS NOT NULL
BEGIN
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN OLD.state ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO task_transitions (task_uuid, from_state, to_state, event, metadata, processor, created_at)
    VALUES (NEW.task_uuid, COALESCE(json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), OLD.state), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at);
END;

CREATE TRIGGER steps_audit_insert AFTER INSERT ON steps
BEGIN
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT NEW.step_uuid, NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN NULL ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    VALUES (NEW.step_uuid, NEW.task_uuid, json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at);
END;

CREATE TRIGGER steps_audit_update AFTER UPDATE OF state ON steps
WHEN OLD.state IS NOT NEW.state OR NEW.transition_path IS NOT NULL
BEGIN
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    SELECT NEW.step_uuid, NEW.task_uuid,
           CASE WHEN hop.key = 0 THEN OLD.state ELSE json_extract(NEW.transition_path, '$[' || (hop.key - 1) || '].to') END,
           json_extract(hop.value, '$.to'), json_extract(hop.value, '$.event'),
           NEW.transition_metadata, NEW.transition_processor, NEW.updated_at
    FROM json_each(COALESCE(NEW.transition_path, '[]')) AS hop
    ORDER BY hop.key;
    INSERT INTO step_transitions (step_uuid, task_uuid, from_state, to_state, event, metadata, processor, created_at)
    VALUES (NEW.step_uuid, NEW.task_uuid, COALESCE(json_extract(COALESCE(NEW.transition_path, '[]'), '$[#-1].to'), OLD.state), NEW.state,
            NEW.transition_event, NEW.transition_metadata, NEW.transition_processor, NEW.updated_at);
END;
