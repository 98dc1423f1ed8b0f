-- Children of steps that just completed lose one pending parent per completed
-- parent; a pending child left with none is enqueued. Returns every touched child.
-- ?1: JSON array of completed step uuids; ?2: now; ?3: processor
UPDATE steps
SET pending_parents = steps.pending_parents - d.done,
    state = CASE WHEN steps.state = 'pending' AND steps.pending_parents - d.done = 0
                 THEN 'enqueued' ELSE steps.state END,
    ready_at = CASE WHEN steps.state = 'pending' AND steps.pending_parents - d.done = 0
                    THEN ?2 ELSE steps.ready_at END,
    transition_event = 'enqueue',
    transition_path = NULL,
    transition_metadata = NULL,
    transition_processor = ?3,
    updated_at = ?2
FROM (SELECT e.child_step_uuid AS child, count(*) AS done
      FROM step_edges AS e
      WHERE e.parent_step_uuid IN (SELECT value FROM json_each(?1))
      GROUP BY e.child_step_uuid) AS d
WHERE steps.step_uuid = d.child
RETURNING steps.step_uuid, steps.task_uuid, steps.namespace, steps.state
