-- Dead-letter entries, newest first, as JSON objects.
-- $1: status or NULL for all; $2: limit; $3: offset; $4: reason or NULL; $5: namespace or NULL
SELECT data
FROM dead_letter_entry_json
WHERE ($1::text IS NULL OR status = $1)
  AND ($4::text IS NULL OR reason = $4)
  AND ($5::text IS NULL OR namespace = $5)
ORDER BY detected_at DESC, entry_id DESC
LIMIT $2 OFFSET $3
