-- name: launcher_claim_ready
-- Lock up to %(limit)s tasks ready for an attempt (chain rule or retry due), skipping locked ones.
SELECT pt.id AS task_id,
       (SELECT count(*) FROM hrwsi.nomad_job_dispatch AS n
        WHERE n.processing_task_fk_id = pt.id) + 1 AS attempt,
       i.id AS input_id, i.processing_condition_name, i.tile, i.date, i.input_path,
       vm.name AS vm_name
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
JOIN hrwsi.virtual_machine AS vm ON vm.id = pt.virtual_machine_id
LEFT JOIN hrwsi.task_state AS ts ON ts.processing_task_id = pt.id
LEFT JOIN LATERAL (
    SELECT d.id FROM hrwsi.nomad_job_dispatch AS d
    WHERE d.processing_task_fk_id = pt.id
    ORDER BY d.id DESC LIMIT 1
) AS last ON true
WHERE pt.has_ended = false
  -- console: nothing is launched for a paused condition
  AND NOT EXISTS (SELECT 1 FROM hrwsi.condition_pause AS cp
                  WHERE cp.processing_condition_name = i.processing_condition_name)
  AND (
      (last.id IS NULL AND (
          pt.preceding_input_id IS NULL
          -- v1: some task of the preceding input is processed
          OR EXISTS (
              SELECT 1
              FROM hrwsi.processing_tasks AS prev
              JOIN hrwsi.nomad_job_dispatch AS pd ON pd.processing_task_fk_id = prev.id
              JOIN hrwsi.processing_status_workflow AS pw ON pw.nomad_job_dispatch_fk_id = pd.id
              WHERE prev.input_fk_id = pt.preceding_input_id AND pw.processing_status_id = 2
          )
          -- skip and continue: the preceding task on this VM has ended (failed for good),
          -- or there is none any more
          OR NOT EXISTS (
              SELECT 1 FROM hrwsi.processing_tasks AS prev
              WHERE prev.input_fk_id = pt.preceding_input_id
                AND prev.virtual_machine_id = pt.virtual_machine_id
                AND prev.has_ended IS NOT TRUE
          )
      ))
      OR (last.id IS NOT NULL
          AND (ts.next_attempt_at IS NULL OR ts.next_attempt_at <= now())
          AND EXISTS (
              SELECT 1 FROM hrwsi.processing_status_workflow AS w
              WHERE w.nomad_job_dispatch_fk_id = last.id AND w.processing_status_id IN (3, 4)
          )
          AND NOT EXISTS (
              SELECT 1 FROM hrwsi.processing_status_workflow AS w
              WHERE w.nomad_job_dispatch_fk_id = last.id AND w.processing_status_id = 2
          ))
  )
ORDER BY pt.id
LIMIT %(limit)s
FOR UPDATE OF pt SKIP LOCKED

-- name: launcher_open_dispatches
-- Latest dispatches of unfinished tasks that have no terminal status yet (submitted or running).
SELECT last.id AS dispatch_id, last.nomad_job_dispatch AS key, pt.id AS task_id,
       i.id AS input_id, i.processing_condition_name, i.tile, i.date, i.input_path,
       vm.name AS vm_name,
       EXISTS (
           SELECT 1 FROM hrwsi.processing_status_workflow AS s
           WHERE s.nomad_job_dispatch_fk_id = last.id AND s.processing_status_id = 1
       ) AS started
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
JOIN hrwsi.virtual_machine AS vm ON vm.id = pt.virtual_machine_id
JOIN LATERAL (
    SELECT d.id, d.nomad_job_dispatch FROM hrwsi.nomad_job_dispatch AS d
    WHERE d.processing_task_fk_id = pt.id
    ORDER BY d.id DESC LIMIT 1
) AS last ON true
WHERE pt.has_ended = false
  AND NOT EXISTS (
      SELECT 1 FROM hrwsi.processing_status_workflow AS w
      WHERE w.nomad_job_dispatch_fk_id = last.id AND w.processing_status_id IN (2, 3, 4)
  )
ORDER BY last.id

-- name: launcher_task_history
-- Every dispatch of a task, oldest first, with its terminal status and its time (UTC) if any.
SELECT d.id, t.processing_status_id, t.date
FROM hrwsi.nomad_job_dispatch AS d
LEFT JOIN LATERAL (
    SELECT w.processing_status_id, w.date FROM hrwsi.processing_status_workflow AS w
    WHERE w.nomad_job_dispatch_fk_id = d.id AND w.processing_status_id IN (2, 3, 4)
    ORDER BY w.id LIMIT 1
) AS t ON true
WHERE d.processing_task_fk_id = %(task_id)s
ORDER BY d.id

-- name: launcher_end_task
-- A task has ended (processed, or failed for good): nothing more is dispatched for it.
WITH no_retry AS (
    UPDATE hrwsi.task_state SET next_attempt_at = NULL
    WHERE processing_task_id = %(task_id)s AND next_attempt_at IS NOT NULL
)
UPDATE hrwsi.processing_tasks SET has_ended = true
WHERE id = %(task_id)s AND has_ended IS NOT TRUE

-- name: launcher_schedule_retry
-- A failed task may be dispatched again from this time on.
INSERT INTO hrwsi.task_state AS ts (processing_task_id, created_at, next_attempt_at)
SELECT pt.id, NULL, %(at)s FROM hrwsi.processing_tasks AS pt WHERE pt.id = %(task_id)s
ON CONFLICT (processing_task_id) DO UPDATE SET next_attempt_at = EXCLUDED.next_attempt_at

-- name: launcher_next_retry
-- The earliest future retry time of an unfinished task (NULL when none is waiting).
SELECT min(ts.next_attempt_at)
FROM hrwsi.task_state AS ts
JOIN hrwsi.processing_tasks AS pt ON pt.id = ts.processing_task_id
WHERE ts.next_attempt_at > now() AND pt.has_ended = false

-- name: launcher_status_inputs
-- Inputs per processing condition (hrwsi status).
SELECT processing_condition_name, count(*) FROM hrwsi.input
GROUP BY processing_condition_name ORDER BY processing_condition_name

-- name: launcher_status_tasks
-- Tasks per state: pending, running, waiting_retry, processed, failed (for good), cancelled
-- (hrwsi status), by the console's one definition of a task's state (hrwsi.task_state_of).
SELECT hrwsi.task_state_of(pt.id, pt.has_ended) AS state, count(*)
FROM hrwsi.processing_tasks AS pt
GROUP BY 1

-- name: launcher_status_running
-- Dispatches of unfinished tasks without a terminal status, newest first (hrwsi status).
SELECT pt.id AS task_id, d.nomad_job_dispatch, d.dispatch_date, d.log_path,
       EXISTS (
           SELECT 1 FROM hrwsi.processing_status_workflow AS w
           WHERE w.nomad_job_dispatch_fk_id = d.id AND w.processing_status_id = 1
       ) AS started
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = pt.id
WHERE pt.has_ended = false
  AND NOT EXISTS (
      SELECT 1 FROM hrwsi.processing_status_workflow AS w
      WHERE w.nomad_job_dispatch_fk_id = d.id AND w.processing_status_id IN (2, 3, 4)
  )
ORDER BY d.id DESC
LIMIT %(limit)s

-- name: launcher_status_failures
-- The latest error status rows with their task and message (hrwsi status).
SELECT d.processing_task_fk_id AS task_id, d.nomad_job_dispatch, s.name, w.date, w.message
FROM hrwsi.processing_status_workflow AS w
JOIN hrwsi.nomad_job_dispatch AS d ON d.id = w.nomad_job_dispatch_fk_id
JOIN hrwsi.processing_status AS s ON s.id = w.processing_status_id
WHERE w.processing_status_id IN (3, 4)
ORDER BY w.id DESC
LIMIT %(limit)s

-- name: launcher_status_products
-- Products per product type (hrwsi status).
SELECT t.code, count(p.id)
FROM hrwsi.product_type AS t
LEFT JOIN hrwsi.products AS p ON p.product_type_id = t.id
GROUP BY t.code ORDER BY t.code

-- name: launcher_insert_dispatches
-- Record a batch of attempts before submitting them (dispatch_date: now, UTC); keys already present insert nothing.
INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch, dispatch_date)
SELECT t.task_id, t.key, clock_timestamp() AT TIME ZONE 'UTC'
FROM unnest(%(task_ids)s::bigint[], %(keys)s::text[]) WITH ORDINALITY AS t (task_id, key, n)
ORDER BY t.n
ON CONFLICT DO NOTHING
RETURNING processing_task_fk_id AS task_id

-- name: launcher_lock_dispatches
-- Lock a group of dispatches (by attempt key) and their tasks, in id order, before recording.
SELECT d.id AS dispatch_id, d.nomad_job_dispatch AS key, d.log_path, pt.id AS task_id,
       pt.has_ended,
       coalesce((SELECT ts.extra_attempts FROM hrwsi.task_state AS ts
                 WHERE ts.processing_task_id = pt.id), 0) AS extra_attempts,
       i.id AS input_id, i.processing_condition_name, i.tile, i.date,
       (SELECT s.id FROM hrwsi.processing_tasks AS s
        WHERE s.preceding_input_id = pt.input_fk_id AND s.has_ended = false
        LIMIT 1) IS NOT NULL AS has_successor
FROM hrwsi.nomad_job_dispatch AS d
JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
WHERE d.nomad_job_dispatch = ANY(%(keys)s::text[])
ORDER BY d.id
FOR UPDATE OF d, pt

-- name: launcher_dispatches_recorded
-- What is already recorded for locked dispatches (a later statement, so it sees the latest).
SELECT d.id AS dispatch_id,
    EXISTS (
        SELECT 1 FROM hrwsi.processing_status_workflow AS w
        WHERE w.nomad_job_dispatch_fk_id = d.id AND w.processing_status_id IN (2, 3, 4)
    ) AS has_terminal,
    EXISTS (
        SELECT 1 FROM hrwsi.processing_status_workflow AS w
        WHERE w.nomad_job_dispatch_fk_id = d.id AND w.processing_status_id = 1
    ) AS has_started
FROM unnest(%(ids)s::bigint[]) AS d (id)

-- name: launcher_set_log_paths
-- Remember where dispatches' logs are, once the executor says so.
UPDATE hrwsi.nomad_job_dispatch AS d SET log_path = v.log_path
FROM unnest(%(ids)s::bigint[], %(log_paths)s::text[]) AS v (id, log_path)
WHERE d.id = v.id AND d.log_path IS DISTINCT FROM v.log_path

-- name: launcher_insert_statuses
-- Append status rows to dispatches, in the order given (started before processed; date: now, UTC).
INSERT INTO hrwsi.processing_status_workflow
    (nomad_job_dispatch_fk_id, processing_status_id, date, message)
SELECT s.dispatch_id, s.status, clock_timestamp() AT TIME ZONE 'UTC', s.message
FROM unnest(%(ids)s::bigint[], %(statuses)s::smallint[], %(messages)s::text[])
    WITH ORDINALITY AS s (dispatch_id, status, message, n)
ORDER BY s.n

-- name: launcher_insert_products
-- Register the products of processed tasks once each (the product path is unique).
INSERT INTO hrwsi.products
    (input_fk_id, product_path, creation_date, catalogued_date, product_type_id)
SELECT p.input_id, p.product_path, clock_timestamp() AT TIME ZONE 'UTC',
       clock_timestamp() AT TIME ZONE 'UTC',
       t.id::smallint
FROM unnest(%(input_ids)s::bigint[], %(product_paths)s::text[], %(type_codes)s::text[])
    WITH ORDINALITY AS p (input_id, product_path, type_code, n)
JOIN hrwsi.product_type AS t ON t.code = p.type_code
ORDER BY p.n
ON CONFLICT (product_path) DO NOTHING
RETURNING input_fk_id

-- name: launcher_end_tasks
-- Tasks that have ended (processed): nothing more is dispatched for them.
WITH no_retry AS (
    UPDATE hrwsi.task_state SET next_attempt_at = NULL
    WHERE processing_task_id = ANY(%(task_ids)s::bigint[]) AND next_attempt_at IS NOT NULL
)
UPDATE hrwsi.processing_tasks SET has_ended = true
WHERE id = ANY(%(task_ids)s::bigint[]) AND has_ended IS NOT TRUE

-- name: launcher_claim_successors
-- Lock up to %(limit)s undispatched tasks chained after the given inputs that are now ready.
-- Every lookup is a per-row index probe (scalar subqueries with LIMIT): the plan stays a few
-- index reads whatever the table statistics say (fresh tables are not analyzed yet).
WITH candidate AS MATERIALIZED (
    SELECT pt.id, pt.input_fk_id, pt.virtual_machine_id, pt.preceding_input_id
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.preceding_input_id = ANY(%(input_ids)s::bigint[]) AND pt.has_ended = false
    ORDER BY pt.id
    FOR UPDATE SKIP LOCKED
)
SELECT c.id AS task_id, 1 AS attempt,
       i.id AS input_id, i.processing_condition_name, i.tile, i.date, i.input_path,
       (SELECT vm.name FROM hrwsi.virtual_machine AS vm
        WHERE vm.id = c.virtual_machine_id) AS vm_name
FROM candidate AS c
CROSS JOIN LATERAL (
    SELECT x.id, x.processing_condition_name, x.tile, x.date, x.input_path
    FROM hrwsi.input AS x WHERE x.id = c.input_fk_id LIMIT 1
) AS i
WHERE (SELECT d.id FROM hrwsi.nomad_job_dispatch AS d
       WHERE d.processing_task_fk_id = c.id LIMIT 1) IS NULL
  -- console: nothing is launched for a paused condition
  AND NOT EXISTS (SELECT 1 FROM hrwsi.condition_pause AS cp
                  WHERE cp.processing_condition_name = i.processing_condition_name)
  AND (
      -- v1: some task of the preceding input is processed
      (SELECT prev.id FROM hrwsi.processing_tasks AS prev
       WHERE prev.input_fk_id = c.preceding_input_id
         AND (SELECT pd.id FROM hrwsi.nomad_job_dispatch AS pd
              WHERE pd.processing_task_fk_id = prev.id
                AND (SELECT pw.id FROM hrwsi.processing_status_workflow AS pw
                     WHERE pw.nomad_job_dispatch_fk_id = pd.id AND pw.processing_status_id = 2
                     LIMIT 1) IS NOT NULL
              LIMIT 1) IS NOT NULL
       LIMIT 1) IS NOT NULL
      -- skip and continue: the preceding task on this VM has ended, or there is none any more
      OR (SELECT prev.id FROM hrwsi.processing_tasks AS prev
          WHERE prev.input_fk_id = c.preceding_input_id
            AND prev.virtual_machine_id = c.virtual_machine_id
            AND prev.has_ended IS NOT TRUE
          LIMIT 1) IS NULL
  )
ORDER BY c.id
LIMIT %(limit)s

-- name: launcher_acknowledge_dispatches
-- The executor acknowledged the submit of these attempts (by key): only the others may be submitted again.
INSERT INTO hrwsi.dispatch_ack (nomad_job_dispatch_id)
SELECT d.id FROM hrwsi.nomad_job_dispatch AS d
WHERE d.nomad_job_dispatch = ANY(%(keys)s::text[])
ON CONFLICT DO NOTHING

-- name: launcher_dispatches_acknowledged
-- Which of these dispatches (by id) the executor acknowledged.
SELECT a.nomad_job_dispatch_id AS dispatch_id
FROM hrwsi.dispatch_ack AS a
WHERE a.nomad_job_dispatch_id = ANY(%(ids)s::bigint[])
