-- The step a resolution acts on, locked (after its task). $1: step uuid
SELECT jsonb_build_object('task_uuid', s.task_uuid, 'state', s.state, 'pending_parents', s.pending_parents) AS data
FROM steps AS s
WHERE s.step_uuid = $1
FOR UPDATE
