-- Insert DAG edges of new tasks. ?1: JSON array of {task_uuid, parent, child}
INSERT INTO step_edges (task_uuid, parent_step_uuid, child_step_uuid)
SELECT e.value ->> '$.task_uuid', e.value ->> '$.parent', e.value ->> '$.child'
FROM json_each(?1) AS e
