-- The highest migration version applied (0 when none): reaches the database for
-- /ready and tells whether its schema is current.
SELECT COALESCE(MAX(version), 0) AS applied
FROM _sqlx_migrations
WHERE success = 1
