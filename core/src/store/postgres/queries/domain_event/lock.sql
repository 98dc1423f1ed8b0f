-- Serialises transactions that insert domain events until they commit, so that
-- sequences are committed in order and a consumer never moves past a row that
-- commits later. The key is a constant ('tasker_domain_events').
SELECT pg_advisory_xact_lock(hashtext('tasker_domain_events'));
