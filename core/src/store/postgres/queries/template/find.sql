-- Every registered version of one template; Rust picks the version (semver order,
-- newest registration first among equal versions). $1: namespace; $2: name
SELECT content_hash, namespace, name, version, definition, created_at
FROM templates
WHERE namespace = $1 AND name = $2
ORDER BY created_at DESC, content_hash
