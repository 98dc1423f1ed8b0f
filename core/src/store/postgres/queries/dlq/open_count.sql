-- Open dead-letter entries (the gauge).
SELECT count(*) AS n FROM dead_letter_entries WHERE status = 'open'
