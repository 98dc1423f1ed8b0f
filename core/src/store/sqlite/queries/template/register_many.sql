-- Register templates (one round trip): insert each template whose content hash is
-- new; a known hash is left as it is (same hash, same definition).
-- ?1: templates JSON [{content_hash, namespace, name, version, definition}]; ?2: now
BEGIN IMMEDIATE;

INSERT INTO templates (content_hash, namespace, name, version, definition, created_at)
SELECT t.value ->> '$.content_hash', t.value ->> '$.namespace', t.value ->> '$.name',
       t.value ->> '$.version', t.value ->> '$.definition', ?2
FROM json_each(?1) AS t
WHERE true
ON CONFLICT (content_hash) DO NOTHING;

COMMIT;
