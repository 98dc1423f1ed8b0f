-- Read what planning the steps that decision and batch outcomes create needs, in
-- the result transaction (sent after `BEGIN IMMEDIATE;`, so nothing changes
-- between this read and the writes that follow). One row per fact, by `kind`:
--  'held': a step with an outcome still held by the claim its result quotes
--          (step_uuid, task_uuid); results for other claims will be rejected;
--  'task': each such step's task: value = its template definition;
--  'step': every step of those tasks: step_uuid, name, template_step_name, value = state;
--  'edge': every edge of those tasks: step_uuid = child, other = parent.
-- ?1: JSON array of {step_uuid, claim_seq} of the results with an outcome
WITH held AS (
    SELECT s.step_uuid, s.task_uuid
    FROM json_each(?1) AS c
    JOIN steps AS s ON s.step_uuid = c.value ->> '$.step_uuid'
    WHERE s.state = 'in_progress'
      AND s.claim_seq = c.value ->> '$.claim_seq'
),
held_tasks AS (
    SELECT DISTINCT task_uuid FROM held
)
SELECT 'held' AS kind, h.task_uuid, h.step_uuid, NULL AS other, NULL AS name, NULL AS template_step_name,
       NULL AS value
FROM held AS h
UNION ALL
SELECT 'task', t.task_uuid, NULL, NULL, NULL, NULL, tp.definition
FROM tasks AS t
JOIN templates AS tp ON tp.content_hash = t.template_hash
WHERE t.task_uuid IN (SELECT task_uuid FROM held_tasks)
UNION ALL
SELECT 'step', s.task_uuid, s.step_uuid, NULL, s.name, s.template_step_name, s.state
FROM steps AS s
WHERE s.task_uuid IN (SELECT task_uuid FROM held_tasks)
UNION ALL
SELECT 'edge', s.task_uuid, e.child_step_uuid, e.parent_step_uuid, NULL, NULL, NULL
FROM steps AS s
JOIN step_edges AS e ON e.child_step_uuid = s.step_uuid
WHERE s.task_uuid IN (SELECT task_uuid FROM held_tasks);
