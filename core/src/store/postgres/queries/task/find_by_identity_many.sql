-- Tasks holding identity hashes (for duplicates created by a concurrent transaction
-- after this one's snapshot). $1: identity hashes JSON
SELECT 'existing' AS kind, task_uuid, identity_hash, state, namespace
FROM tasks
WHERE identity_hash IN (SELECT jsonb_array_elements_text($1::jsonb))
