-- Read what planning the steps that decision and batch outcomes create needs, in
-- the result transaction, after its tasks were locked (task/lock_of_steps.sql).
-- The steps still held by the claim their result quotes are locked too, so a
-- lease sweep cannot hand one back between this read and the result's apply.
-- One row per fact, by `kind`, its facts in `data`:
--  'held': {step_uuid, task_uuid} of a step with an outcome, still held;
--  'task': {task_uuid, definition} of each such step's task;
--  'step': {task_uuid, step_uuid, name, template_step_name, state} of every step of those tasks;
--  'edge': {task_uuid, parent, child} of every edge of those tasks.
-- $1: JSON [{step_uuid, claim_seq}] of the results with an outcome
WITH held AS (
    SELECT s.step_uuid, s.task_uuid
    FROM steps AS s
    JOIN jsonb_to_recordset($1::jsonb) AS c(step_uuid uuid, claim_seq bigint) ON c.step_uuid = s.step_uuid
    WHERE s.state = 'in_progress'
      AND s.claim_seq = c.claim_seq
    FOR UPDATE OF s
),
held_tasks AS (
    SELECT DISTINCT task_uuid FROM held
)
SELECT 'held' AS kind, jsonb_build_object('step_uuid', h.step_uuid, 'task_uuid', h.task_uuid) AS data
FROM held AS h
UNION ALL
SELECT 'task', jsonb_build_object('task_uuid', t.task_uuid, 'definition', tp.definition)
FROM tasks AS t
JOIN templates AS tp ON tp.content_hash = t.template_hash
WHERE t.task_uuid IN (SELECT task_uuid FROM held_tasks)
UNION ALL
SELECT 'step', jsonb_build_object('task_uuid', s.task_uuid, 'step_uuid', s.step_uuid, 'name', s.name,
                                  'template_step_name', s.template_step_name, 'state', s.state)
FROM steps AS s
WHERE s.task_uuid IN (SELECT task_uuid FROM held_tasks)
UNION ALL
SELECT 'edge', jsonb_build_object('task_uuid', s.task_uuid, 'parent', e.parent_step_uuid, 'child', e.child_step_uuid)
FROM steps AS s
JOIN step_edges AS e ON e.child_step_uuid = s.step_uuid
WHERE s.task_uuid IN (SELECT task_uuid FROM held_tasks)
