-- Dead-letter entries, newest first, as JSON objects.
-- $1: status or NULL for all; $2: limit; $3: offset
SELECT data
FROM dead_letter_entry_json
WHERE ($1::text IS NULL OR status = $1)
ORDER BY detected_at DESC, entry_id DESC
LIMIT $2 OFFSET $3
