-- Dead-letter entries by id, as JSON objects. ?1: JSON array of entry ids
SELECT data
FROM dead_letter_entry_json
WHERE entry_id IN (SELECT value FROM json_each(?1))
ORDER BY detected_at, entry_id
