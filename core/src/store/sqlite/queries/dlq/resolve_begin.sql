-- Open a resolution's write transaction and read what it decides on: the entry (as
-- JSON) and the step acted on. ?1: entry id; ?2: step uuid
BEGIN IMMEDIATE;

SELECT 'entry' AS kind, data
FROM dead_letter_entry_json
WHERE entry_id = ?1
UNION ALL
SELECT 'step', json_object('task_uuid', s.task_uuid, 'state', s.state, 'pending_parents', s.pending_parents)
FROM steps AS s
WHERE s.step_uuid = ?2;
