-- Register templates: insert each template whose content hash is new; a known hash
-- is left as it is (same hash, same definition).
-- $1: templates JSON [{content_hash, namespace, name, version, definition}]; $2: now
INSERT INTO templates (content_hash, namespace, name, version, definition, created_at)
SELECT t.content_hash, t.namespace, t.name, t.version, t.definition::jsonb, $2
FROM jsonb_to_recordset($1::jsonb) AS t(content_hash text, namespace text, name text, version text, definition text)
ON CONFLICT (content_hash) DO NOTHING
