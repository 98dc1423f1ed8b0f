-- Persist the templates of new tasks (once per content hash).
-- ?1: JSON array of {content_hash, namespace, name, version, definition (JSON text)}; ?2: now
INSERT INTO templates (content_hash, namespace, name, version, definition, created_at)
SELECT t.value ->> '$.content_hash', t.value ->> '$.namespace', t.value ->> '$.name',
       t.value ->> '$.version', t.value ->> '$.definition', ?2
FROM json_each(?1) AS t
WHERE true
ON CONFLICT (content_hash) DO NOTHING
