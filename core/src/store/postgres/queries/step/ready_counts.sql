-- Ready steps (enqueued, waiting for a worker) per namespace. The first condition
-- repeats the partial index's own predicate so that the planner may use steps_ready_idx.
SELECT namespace, COUNT(*) AS ready
FROM steps
WHERE state IN ('enqueued', 'waiting_for_retry')
  AND state = 'enqueued'
GROUP BY namespace
