-- Existing tasks by identity hash (for duplicate submissions).
-- ?1: JSON array of identity hashes
SELECT task_uuid, identity_hash, state, namespace
FROM tasks
WHERE identity_hash IN (SELECT value FROM json_each(?1))
