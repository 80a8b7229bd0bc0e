-- Queries of `hrwsi status` (issue 16): failures told apart by what became of their task.

-- name: status_failed_attempts
-- The latest failed attempts, newest first, each with what became of its task:
-- retried_ok (a later attempt processed it), cancelled (an operator ended it), failed_for_good
-- (ended unprocessed) or retrying.
SELECT d.processing_task_fk_id AS task_id, d.nomad_job_dispatch, s.name, w.date, w.message,
       d.log_path,
       CASE
           WHEN EXISTS (
               SELECT 1 FROM hrwsi.nomad_job_dispatch AS d2
               JOIN hrwsi.processing_status_workflow AS w2 ON w2.nomad_job_dispatch_fk_id = d2.id
               WHERE d2.processing_task_fk_id = pt.id AND w2.processing_status_id = 2
           ) THEN 'retried_ok'
           WHEN pt.has_ended IS TRUE AND EXISTS (
               SELECT 1 FROM hrwsi.task_cancel AS c WHERE c.processing_task_id = pt.id
           ) THEN 'cancelled'
           WHEN pt.has_ended IS TRUE THEN 'failed_for_good'
           ELSE 'retrying'
       END AS outcome
FROM hrwsi.processing_status_workflow AS w
JOIN hrwsi.nomad_job_dispatch AS d ON d.id = w.nomad_job_dispatch_fk_id
JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
JOIN hrwsi.processing_status AS s ON s.id = w.processing_status_id
WHERE w.processing_status_id IN (3, 4)
ORDER BY w.id DESC
LIMIT %(limit)s

-- name: status_failed_for_good
-- The latest tasks that ended unprocessed and not cancelled, newest first: their input,
-- attempts and last failure.
SELECT pt.id AS task_id, pt.input_fk_id, i.processing_condition_name, i.input_path,
       (SELECT count(*) FROM hrwsi.nomad_job_dispatch AS d
        WHERE d.processing_task_fk_id = pt.id) AS attempts,
       last.nomad_job_dispatch, last.name, last.date, last.message, last.log_path
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
LEFT JOIN LATERAL (
    SELECT d.nomad_job_dispatch, s.name, w.date, w.message, d.log_path
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
    JOIN hrwsi.processing_status AS s ON s.id = w.processing_status_id
    WHERE d.processing_task_fk_id = pt.id
    ORDER BY w.id DESC LIMIT 1
) AS last ON true
WHERE pt.has_ended IS TRUE AND NOT EXISTS (
    SELECT 1 FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
    WHERE d.processing_task_fk_id = pt.id AND w.processing_status_id = 2)
  AND NOT EXISTS (SELECT 1 FROM hrwsi.task_cancel AS c WHERE c.processing_task_id = pt.id)
ORDER BY pt.id DESC
LIMIT %(limit)s

-- name: status_failed_inputs
-- Inputs that failed for good: every task of theirs ended and none was processed. An input
-- re-planned twice whose three tasks all failed is one failed input; an input whose task an
-- operator cancelled is not failed (it waits for the operator, never re-planned).
SELECT count(*) FROM hrwsi.input AS i
WHERE EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = i.id)
  AND NOT EXISTS (
      SELECT 1 FROM hrwsi.processing_tasks AS pt
      WHERE pt.input_fk_id = i.id AND pt.has_ended IS NOT TRUE)
  AND NOT EXISTS (
      SELECT 1 FROM hrwsi.processing_tasks AS pt
      JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = pt.id
      JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
      WHERE pt.input_fk_id = i.id AND w.processing_status_id = 2)
  AND NOT EXISTS (
      SELECT 1 FROM hrwsi.processing_tasks AS pt
      JOIN hrwsi.task_cancel AS c ON c.processing_task_id = pt.id
      WHERE pt.input_fk_id = i.id)
