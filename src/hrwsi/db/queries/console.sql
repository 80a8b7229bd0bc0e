-- name: console_funnel
-- Per processing condition: inputs, inputs with a task, and tasks per state (one aggregate per table).
WITH inputs AS (
    SELECT processing_condition_name AS condition, count(*) AS inputs
    FROM hrwsi.input GROUP BY processing_condition_name
), planned AS (
    SELECT i.processing_condition_name AS condition, count(DISTINCT pt.input_fk_id) AS planned,
           count(*) AS tasks, count(*) FILTER (WHERE pt.has_ended) AS ended
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    GROUP BY i.processing_condition_name
), processed AS (
    SELECT i.processing_condition_name AS condition,
           count(DISTINCT d.processing_task_fk_id) AS processed
    FROM hrwsi.processing_status_workflow AS w
    JOIN hrwsi.nomad_job_dispatch AS d ON d.id = w.nomad_job_dispatch_fk_id
    JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    WHERE w.processing_status_id = 2
    GROUP BY i.processing_condition_name
), cancelled AS (
    SELECT i.processing_condition_name AS condition, count(*) AS cancelled
    FROM hrwsi.task_cancel AS c
    JOIN hrwsi.processing_tasks AS pt ON pt.id = c.processing_task_id AND pt.has_ended
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    WHERE hrwsi.task_state_of(pt.id, pt.has_ended) = 'cancelled'
    GROUP BY i.processing_condition_name
), live AS (
    SELECT i.processing_condition_name AS condition,
           count(*) FILTER (WHERE s.state = 'pending') AS pending,
           count(*) FILTER (WHERE s.state = 'running') AS running,
           count(*) FILTER (WHERE s.state = 'waiting_retry') AS waiting_retry
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    CROSS JOIN LATERAL (SELECT hrwsi.task_state_of(pt.id, pt.has_ended) AS state) AS s
    WHERE pt.has_ended = false
    GROUP BY i.processing_condition_name
)
SELECT c.name AS condition,
       coalesce(inputs.inputs, 0) AS inputs,
       coalesce(planned.planned, 0) AS planned,
       coalesce(live.pending, 0) AS pending,
       coalesce(live.running, 0) AS running,
       coalesce(live.waiting_retry, 0) AS waiting_retry,
       coalesce(processed.processed, 0) AS processed,
       greatest(coalesce(planned.ended, 0) - coalesce(processed.processed, 0)
                - coalesce(cancelled.cancelled, 0), 0) AS failed,
       coalesce(cancelled.cancelled, 0) AS cancelled,
       p.paused_at, p.paused_by
FROM hrwsi.processing_condition AS c
LEFT JOIN inputs ON inputs.condition = c.name
LEFT JOIN planned ON planned.condition = c.name
LEFT JOIN processed ON processed.condition = c.name
LEFT JOIN cancelled ON cancelled.condition = c.name
LEFT JOIN live ON live.condition = c.name
LEFT JOIN hrwsi.condition_pause AS p ON p.processing_condition_name = c.name
ORDER BY c.name

-- name: console_rates
-- Events over the last hour and the last day: inputs, tasks planned, attempts, processed, errors.
-- Our times are zoned (input_meta.inserted_at, task_state.created_at); the v1 ones
-- (dispatch_date, processing_status_workflow.date) are zone-less UTC, so the bound is turned
-- to UTC, never the column (each filter reads its BRIN index, see 0121).
SELECT
    (SELECT count(*) FROM hrwsi.input_meta
     WHERE inserted_at >= now() - interval '1 hour') AS inputs_1h,
    (SELECT count(*) FROM hrwsi.input_meta
     WHERE inserted_at >= now() - interval '1 day') AS inputs_1d,
    (SELECT count(*) FROM hrwsi.task_state
     WHERE created_at >= now() - interval '1 hour') AS tasks_1h,
    (SELECT count(*) FROM hrwsi.task_state
     WHERE created_at >= now() - interval '1 day') AS tasks_1d,
    (SELECT count(*) FROM hrwsi.nomad_job_dispatch
     WHERE dispatch_date >= (now() - interval '1 hour') AT TIME ZONE 'UTC') AS attempts_1h,
    (SELECT count(*) FROM hrwsi.nomad_job_dispatch
     WHERE dispatch_date >= (now() - interval '1 day') AT TIME ZONE 'UTC') AS attempts_1d,
    (SELECT count(*) FROM hrwsi.processing_status_workflow
     WHERE processing_status_id = 2
       AND date >= (now() - interval '1 hour') AT TIME ZONE 'UTC') AS processed_1h,
    (SELECT count(*) FROM hrwsi.processing_status_workflow
     WHERE processing_status_id = 2
       AND date >= (now() - interval '1 day') AT TIME ZONE 'UTC') AS processed_1d,
    (SELECT count(*) FROM hrwsi.processing_status_workflow
     WHERE processing_status_id IN (3, 4)
       AND date >= (now() - interval '1 hour') AT TIME ZONE 'UTC') AS errors_1h,
    (SELECT count(*) FROM hrwsi.processing_status_workflow
     WHERE processing_status_id IN (3, 4)
       AND date >= (now() - interval '1 day') AT TIME ZONE 'UTC') AS errors_1d

-- name: console_vms_in_use
-- VMs holding a live task, per flavour.
SELECT vm.flavour, count(*) AS vms
FROM hrwsi.virtual_machine AS vm
WHERE vm.id IN (
    SELECT pt.virtual_machine_id FROM hrwsi.processing_tasks AS pt WHERE pt.has_ended IS NOT TRUE
)
GROUP BY vm.flavour ORDER BY vm.flavour

-- name: console_heartbeats
-- Every `hrwsi run` process seen, latest first, with how long ago it was last seen (seconds).
SELECT process_id, host, pid, services, started_at, last_seen, version,
       extract(epoch FROM (now() - last_seen)) AS age_s
FROM hrwsi.service_heartbeat
ORDER BY last_seen DESC NULLS LAST
LIMIT %(limit)s

-- name: console_conditions
-- Processing condition names (the filters' choices).
SELECT name FROM hrwsi.processing_condition ORDER BY name

-- name: console_product_types
-- Product type codes (the filters' choices).
SELECT code FROM hrwsi.product_type ORDER BY code

-- name: console_inputs_page
-- A page of inputs newest first after a keyset cursor (id < before), filtered, with the state of
-- each one's latest task ('new' without a task). At most %(scan)s candidate rows are read: a page
-- may hold fewer than %(limit)s rows, and console_inputs_window_end says where to go on.
SELECT w.id, w.processing_condition_name, w.tile, w.measurement_day, w.date, w.input_path,
       m.inserted_at, t.id AS task_id, coalesce(t.state, 'new') AS state
FROM (
    SELECT i.id, i.processing_condition_name, i.tile, i.measurement_day, i.date, i.input_path
    FROM hrwsi.input AS i
    WHERE (%(before)s::bigint IS NULL OR i.id < %(before)s::bigint)
      AND (%(condition)s::text IS NULL OR i.processing_condition_name = %(condition)s::text)
      AND (%(tile)s::text IS NULL OR i.tile = %(tile)s::text)
      AND (%(day_from)s::bigint IS NULL OR i.measurement_day >= %(day_from)s::bigint)
      AND (%(day_to)s::bigint IS NULL OR i.measurement_day <= %(day_to)s::bigint)
    ORDER BY i.id DESC
    LIMIT %(scan)s
) AS w
LEFT JOIN hrwsi.input_meta AS m ON m.input_id = w.id
LEFT JOIN LATERAL (
    SELECT pt.id, hrwsi.task_state_of(pt.id, pt.has_ended) AS state
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.input_fk_id = w.id
    ORDER BY pt.id DESC LIMIT 1
) AS t ON true
WHERE %(state)s::text IS NULL OR coalesce(t.state, 'new') = %(state)s::text
ORDER BY w.id DESC
LIMIT %(limit)s

-- name: console_inputs_window_end
-- The smallest id of the candidate window console_inputs_page read (where the next page starts).
SELECT min(w.id) AS last_id, count(*) AS scanned
FROM (
    SELECT i.id
    FROM hrwsi.input AS i
    WHERE (%(before)s::bigint IS NULL OR i.id < %(before)s::bigint)
      AND (%(condition)s::text IS NULL OR i.processing_condition_name = %(condition)s::text)
      AND (%(tile)s::text IS NULL OR i.tile = %(tile)s::text)
      AND (%(day_from)s::bigint IS NULL OR i.measurement_day >= %(day_from)s::bigint)
      AND (%(day_to)s::bigint IS NULL OR i.measurement_day <= %(day_to)s::bigint)
    ORDER BY i.id DESC
    LIMIT %(scan)s
) AS w

-- name: console_inputs_offset_page
-- Benchmarks only: the same page by OFFSET (the baseline keyset pagination is measured against).
SELECT i.id, i.processing_condition_name, i.tile, i.measurement_day, i.date, i.input_path,
       m.inserted_at, t.id AS task_id, coalesce(t.state, 'new') AS state
FROM hrwsi.input AS i
LEFT JOIN hrwsi.input_meta AS m ON m.input_id = i.id
LEFT JOIN LATERAL (
    SELECT pt.id, hrwsi.task_state_of(pt.id, pt.has_ended) AS state
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.input_fk_id = i.id
    ORDER BY pt.id DESC LIMIT 1
) AS t ON true
WHERE (%(condition)s::text IS NULL OR i.processing_condition_name = %(condition)s::text)
  AND (%(tile)s::text IS NULL OR i.tile = %(tile)s::text)
  AND (%(day_from)s::bigint IS NULL OR i.measurement_day >= %(day_from)s::bigint)
  AND (%(day_to)s::bigint IS NULL OR i.measurement_day <= %(day_to)s::bigint)
  AND (%(state)s::text IS NULL OR coalesce(t.state, 'new') = %(state)s::text)
ORDER BY i.id DESC
OFFSET %(offset)s
LIMIT %(limit)s

-- name: console_tasks_page
-- A page of tasks newest first (id < before), filtered by state, condition and tile, reading at
-- most %(scan)s candidate tasks (see console_inputs_page).
SELECT w.id, w.processing_condition_name, w.tile, w.input_id, w.vm_name, ts.created_at,
       s.state,
       (SELECT count(*) FROM hrwsi.nomad_job_dispatch AS d
        WHERE d.processing_task_fk_id = w.id) AS attempts
FROM (
    SELECT pt.id, pt.has_ended, i.processing_condition_name, i.tile, i.id AS input_id,
           vm.name AS vm_name
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    JOIN hrwsi.virtual_machine AS vm ON vm.id = pt.virtual_machine_id
    WHERE (%(before)s::bigint IS NULL OR pt.id < %(before)s::bigint)
      AND (%(condition)s::text IS NULL OR i.processing_condition_name = %(condition)s::text)
      AND (%(tile)s::text IS NULL OR i.tile = %(tile)s::text)
    ORDER BY pt.id DESC
    LIMIT %(scan)s
) AS w
LEFT JOIN hrwsi.task_state AS ts ON ts.processing_task_id = w.id
CROSS JOIN LATERAL (SELECT hrwsi.task_state_of(w.id, w.has_ended) AS state) AS s
WHERE %(state)s::text IS NULL OR s.state = %(state)s::text
ORDER BY w.id DESC
LIMIT %(limit)s

-- name: console_task
-- One task with its input, VM, state and cancellation, or nothing. The side rows may be missing
-- (a task or input written by a v1 tool): no plan, no extra attempt, no retry waiting.
SELECT pt.id, pt.has_ended, ts.created_at, pt.creation_date, pt.preceding_input_id,
       ts.planned_start_min, ts.planned_end_min, coalesce(ts.extra_attempts, 0) AS extra_attempts,
       ts.next_attempt_at,
       hrwsi.task_state_of(pt.id, pt.has_ended) AS state,
       i.id AS input_id, i.processing_condition_name, i.tile, i.measurement_day, i.date,
       i.input_path, m.product_name, m.inserted_at,
       vm.id AS vm_id, vm.name AS vm_name, vm.flavour,
       c.cancelled_at, c.cancelled_by, c.reason AS cancel_reason
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
JOIN hrwsi.virtual_machine AS vm ON vm.id = pt.virtual_machine_id
LEFT JOIN hrwsi.task_state AS ts ON ts.processing_task_id = pt.id
LEFT JOIN hrwsi.input_meta AS m ON m.input_id = i.id
LEFT JOIN hrwsi.task_cancel AS c ON c.processing_task_id = pt.id
WHERE pt.id = %(task_id)s

-- name: console_task_chain
-- The tasks of a VM in chain order (id order), with their input and state.
SELECT pt.id, pt.input_fk_id, pt.preceding_input_id, ts.planned_start_min, ts.planned_end_min,
       hrwsi.task_state_of(pt.id, pt.has_ended) AS state
FROM hrwsi.processing_tasks AS pt
LEFT JOIN hrwsi.task_state AS ts ON ts.processing_task_id = pt.id
WHERE pt.virtual_machine_id = %(vm_id)s
ORDER BY pt.id
LIMIT %(limit)s

-- name: console_task_attempts
-- Every attempt of a task with every status row, oldest first (dispatched_at: dispatch_date,
-- which hrwsi writes in UTC, as a zoned time).
SELECT d.id AS dispatch_id, d.nomad_job_dispatch AS key, d.dispatch_date, d.log_path,
       d.dispatch_date AT TIME ZONE 'UTC' AS dispatched_at,
       w.id AS status_row_id, s.name AS status, w.date AS status_date, w.message
FROM hrwsi.nomad_job_dispatch AS d
LEFT JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
LEFT JOIN hrwsi.processing_status AS s ON s.id = w.processing_status_id
WHERE d.processing_task_fk_id = %(task_id)s
ORDER BY d.id, w.id

-- name: console_task_products
-- The products of a task's input, with their type.
SELECT p.id, p.product_path, p.creation_date, t.code AS product_type
FROM hrwsi.products AS p
JOIN hrwsi.product_type AS t ON t.id = p.product_type_id
WHERE p.input_fk_id = %(input_id)s
ORDER BY p.id

-- name: console_products_page
-- A page of products newest first (id < before), by type, tile and measurement day, each with
-- the latest task of its input; at most %(scan)s candidate products are read.
SELECT w.id, w.product_path, w.creation_date, w.product_type, i.id AS input_id,
       i.processing_condition_name, i.tile, i.measurement_day,
       (SELECT pt.id FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = i.id
        ORDER BY pt.id DESC LIMIT 1) AS task_id
FROM (
    SELECT p.id, p.product_path, p.creation_date, p.input_fk_id, t.code AS product_type
    FROM hrwsi.products AS p
    JOIN hrwsi.product_type AS t ON t.id = p.product_type_id
    WHERE (%(before)s::bigint IS NULL OR p.id < %(before)s::bigint)
      AND (%(product_type)s::text IS NULL OR t.code = %(product_type)s::text)
    ORDER BY p.id DESC
    LIMIT %(scan)s
) AS w
JOIN hrwsi.input AS i ON i.id = w.input_fk_id
WHERE (%(tile)s::text IS NULL OR i.tile = %(tile)s::text)
  AND (%(day)s::bigint IS NULL OR i.measurement_day = %(day)s::bigint)
ORDER BY w.id DESC
LIMIT %(limit)s

-- name: console_products_window_end
-- The smallest id of the candidate window console_products_page read.
SELECT min(w.id) AS last_id, count(*) AS scanned
FROM (
    SELECT p.id
    FROM hrwsi.products AS p
    JOIN hrwsi.product_type AS t ON t.id = p.product_type_id
    WHERE (%(before)s::bigint IS NULL OR p.id < %(before)s::bigint)
      AND (%(product_type)s::text IS NULL OR t.code = %(product_type)s::text)
    ORDER BY p.id DESC
    LIMIT %(scan)s
) AS w

-- name: console_plan_tasks
-- Live tasks and tasks created since a time (at most %(limit)s, newest first), with their VM,
-- routine, planned minutes and state: the Gantt of the plan. created_at is the pass that wrote
-- the plan (task_state); a task without it counts from its v1 creation_date (UTC). Two
-- branches, each on its index (live tasks; task_state by created_at), not one OR across tables.
SELECT pt.id, coalesce(ts.created_at, pt.creation_date AT TIME ZONE 'UTC') AS created_at,
       ts.planned_start_min, ts.planned_end_min,
       vm.id AS vm_id, vm.name AS vm_name, vm.flavour,
       hrwsi.task_state_of(pt.id, pt.has_ended) AS state
FROM (
    SELECT live.id FROM hrwsi.processing_tasks AS live WHERE live.has_ended = false
    UNION
    SELECT recent.processing_task_id FROM hrwsi.task_state AS recent
    WHERE recent.created_at >= %(since)s
) AS shown
JOIN hrwsi.processing_tasks AS pt ON pt.id = shown.id
JOIN hrwsi.virtual_machine AS vm ON vm.id = pt.virtual_machine_id
LEFT JOIN hrwsi.task_state AS ts ON ts.processing_task_id = pt.id
ORDER BY pt.id DESC
LIMIT %(limit)s

-- name: console_routines
-- Routines with their resources and duration (the Gantt's legend and usage panels).
SELECT name, coalesce(cpu, 0) AS cpu, coalesce(ram, 0) AS ram,
       coalesce(storage_space, 0) AS storage, coalesce(duration, 1) AS duration
FROM hrwsi.processing_routine ORDER BY name

-- name: console_recent_actions
-- The latest operator actions, newest first.
SELECT id, at, actor, action, target, detail
FROM hrwsi.operator_action ORDER BY id DESC LIMIT %(limit)s

-- name: console_record_action
-- Record one operator action (who, what, on what, details).
INSERT INTO hrwsi.operator_action (actor, action, target, detail)
VALUES (%(actor)s, %(action)s, %(target)s, %(detail)s::jsonb)
RETURNING id, at

-- name: console_cancel_lock_task
-- Lock a task for cancelling and report its state.
SELECT pt.id, pt.has_ended, hrwsi.task_state_of(pt.id, pt.has_ended) AS state
FROM hrwsi.processing_tasks AS pt
WHERE pt.id = %(task_id)s
FOR UPDATE OF pt

-- name: console_cancel_task
-- Cancel a locked live task: mark it cancelled, end it, drop any retry it waited for, wake the
-- launchers (task_cancelled).
WITH marked AS (
    INSERT INTO hrwsi.task_cancel (processing_task_id, cancelled_by, reason)
    VALUES (%(task_id)s, %(actor)s, %(reason)s)
    ON CONFLICT (processing_task_id) DO UPDATE
        SET cancelled_at = clock_timestamp(), cancelled_by = EXCLUDED.cancelled_by,
            reason = EXCLUDED.reason
    RETURNING processing_task_id, cancelled_at
), ended AS (
    UPDATE hrwsi.processing_tasks SET has_ended = true
    WHERE id = (SELECT processing_task_id FROM marked)
    RETURNING id
), unscheduled AS (
    UPDATE hrwsi.task_state SET next_attempt_at = NULL
    WHERE processing_task_id = (SELECT processing_task_id FROM marked)
      AND next_attempt_at IS NOT NULL
)
SELECT m.cancelled_at, pg_notify('task_cancelled', m.processing_task_id::text)
FROM marked AS m, ended

-- name: console_pause_condition
-- Pause a processing condition (a no-op when already paused); the row says since when and by whom.
WITH added AS (
    INSERT INTO hrwsi.condition_pause (processing_condition_name, paused_by, reason)
    SELECT c.name, %(actor)s, %(reason)s FROM hrwsi.processing_condition AS c
    WHERE c.name = %(condition)s
    ON CONFLICT (processing_condition_name) DO NOTHING
    RETURNING processing_condition_name
)
SELECT (SELECT count(*) FROM added) AS added,
       EXISTS (SELECT 1 FROM hrwsi.processing_condition WHERE name = %(condition)s) AS known

-- name: console_resume_condition
-- Resume a paused condition and wake the orchestrators and launchers.
WITH removed AS (
    DELETE FROM hrwsi.condition_pause WHERE processing_condition_name = %(condition)s
    RETURNING processing_condition_name
)
SELECT count(*) AS removed,
       EXISTS (SELECT 1 FROM hrwsi.processing_condition WHERE name = %(condition)s) AS known,
       bool_or(pg_notify('input_insertion', processing_condition_name) IS NULL) AS woke,
       bool_or(pg_notify('processing_task_insertion',
           json_build_object('count', 0, 'resumed', processing_condition_name)::text) IS NULL)
           AS woke_launcher
FROM removed

-- name: console_paused_conditions
-- Paused conditions with who paused them and when.
SELECT processing_condition_name, paused_at, paused_by, reason
FROM hrwsi.condition_pause ORDER BY processing_condition_name

-- name: console_launcher_cancelled_open
-- Latest dispatches of cancelled tasks that have no terminal status yet: runs to stop.
SELECT last.id AS dispatch_id, last.nomad_job_dispatch AS key, c.processing_task_id AS task_id,
       c.cancelled_by
FROM hrwsi.task_cancel AS c
JOIN hrwsi.processing_tasks AS pt ON pt.id = c.processing_task_id AND pt.has_ended
JOIN LATERAL (
    SELECT d.id, d.nomad_job_dispatch FROM hrwsi.nomad_job_dispatch AS d
    WHERE d.processing_task_fk_id = pt.id
    ORDER BY d.id DESC LIMIT 1
) AS last ON true
WHERE NOT EXISTS (
    SELECT 1 FROM hrwsi.processing_status_workflow AS w
    WHERE w.nomad_job_dispatch_fk_id = last.id AND w.processing_status_id IN (2, 3, 4)
)
ORDER BY last.id
LIMIT %(limit)s

-- name: console_launcher_lock_cancelled
-- Lock one dispatch of a cancelled task; true when it still has no terminal status.
SELECT d.id,
       NOT EXISTS (
           SELECT 1 FROM hrwsi.processing_status_workflow AS w
           WHERE w.nomad_job_dispatch_fk_id = d.id AND w.processing_status_id IN (2, 3, 4)
       ) AS open
FROM hrwsi.nomad_job_dispatch AS d
WHERE d.id = %(dispatch_id)s
FOR UPDATE

-- name: console_launcher_record_cancelled
-- Record a stopped attempt of a cancelled task as an external error "cancelled by <actor>".
INSERT INTO hrwsi.processing_status_workflow
    (nomad_job_dispatch_fk_id, processing_status_id, date, message)
VALUES (%(dispatch_id)s, 4, now() AT TIME ZONE 'UTC', %(message)s)

-- name: console_metrics_attempts
-- Status rows per outcome (processed, internal_error, external_error).
SELECT s.name, count(w.id)
FROM hrwsi.processing_status AS s
LEFT JOIN hrwsi.processing_status_workflow AS w ON w.processing_status_id = s.id
WHERE s.id IN (2, 3, 4)
GROUP BY s.name ORDER BY s.name

-- name: console_statement_timeout
-- A metrics scrape never holds the database for long.
SET statement_timeout = '5s'

-- name: console_bench_fill_inputs
-- Benchmarks only: `count` synthetic inputs over two conditions, 20 tiles and 60 days.
INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day, input_path,
                         mission)
SELECT CASE WHEN mod(g, 2) = 0 THEN 'MAJA_PC' ELSE 'FSC_PC' END,
       timestamp '2024-01-01' + g * interval '1 second',
       'T' || lpad(mod(g, 20)::text, 2, '0'),
       to_char(date '2024-01-01' + mod(g / 1000, 60)::integer, 'YYYYMMDD')::bigint,
       '/bench/console/' || g, 'S2'
FROM generate_series(1, %(count)s::bigint) AS g

-- name: console_bench_id_at
-- Benchmarks only: the id of the row at a position of the newest-first list (the cursor a
-- reader paging by keyset would hold there).
SELECT id FROM hrwsi.input ORDER BY id DESC OFFSET %(offset)s LIMIT 1
