-- Dead-letter entries by id, as JSON objects. $1: entry ids
SELECT data
FROM dead_letter_entry_json
WHERE entry_id = ANY($1::uuid[])
ORDER BY detected_at, entry_id
