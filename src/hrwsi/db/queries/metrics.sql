-- name: metrics_dispatch_latency
-- Input commit to first dispatch, in milliseconds, for inputs inserted since a time (input_meta.inserted_at; dispatch_date is UTC).
SELECT
    count(*) AS inputs,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99_ms,
    max(ms) AS max_ms
FROM (
    SELECT extract(epoch FROM (min(d.dispatch_date) AT TIME ZONE 'UTC' - m.inserted_at)) * 1000
        AS ms
    FROM hrwsi.input_meta AS m
    JOIN hrwsi.processing_tasks AS pt ON pt.input_fk_id = m.input_id
    JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = pt.id
    WHERE m.inserted_at >= %(since)s
    GROUP BY m.input_id, m.inserted_at
) AS per_input

-- name: metrics_chain_summary
-- Per processing condition: inputs, tasks, attempts, failed attempts, and inputs with a product.
-- One aggregate per table, each joined up to its input's condition, then joined by condition:
-- never the input x task x dispatch x status x product cross product (see bench/dashboard.py).
-- failed_attempts counts status rows 3/4 (a dispatch with both counts twice); the other columns
-- count rows of their table (ids are unique and not null), inputs_with_product distinct inputs.
WITH inputs AS (
    SELECT processing_condition_name AS condition, count(*) AS inputs
    FROM hrwsi.input
    GROUP BY processing_condition_name
), tasks AS (
    SELECT i.processing_condition_name AS condition, count(*) AS tasks,
           count(*) FILTER (WHERE pt.has_ended) AS tasks_ended
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    GROUP BY i.processing_condition_name
), attempts AS (
    SELECT i.processing_condition_name AS condition, count(*) AS attempts
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    GROUP BY i.processing_condition_name
), failed AS (
    SELECT i.processing_condition_name AS condition, count(*) AS failed_attempts
    FROM hrwsi.processing_status_workflow AS w
    JOIN hrwsi.nomad_job_dispatch AS d ON d.id = w.nomad_job_dispatch_fk_id
    JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    WHERE w.processing_status_id IN (3, 4)
    GROUP BY i.processing_condition_name
), with_product AS (
    SELECT i.processing_condition_name AS condition, count(*) AS inputs_with_product
    FROM hrwsi.input AS i
    WHERE EXISTS (SELECT 1 FROM hrwsi.products AS p WHERE p.input_fk_id = i.id)
    GROUP BY i.processing_condition_name
)
SELECT inputs.condition,
       inputs.inputs,
       coalesce(tasks.tasks, 0) AS tasks,
       coalesce(attempts.attempts, 0) AS attempts,
       coalesce(failed.failed_attempts, 0) AS failed_attempts,
       coalesce(with_product.inputs_with_product, 0) AS inputs_with_product,
       coalesce(tasks.tasks_ended, 0) AS tasks_ended
FROM inputs
LEFT JOIN tasks USING (condition)
LEFT JOIN attempts USING (condition)
LEFT JOIN failed USING (condition)
LEFT JOIN with_product USING (condition)
ORDER BY inputs.condition

-- name: metrics_products_by_type
-- Products per product type code.
SELECT t.code, count(p.id)
FROM hrwsi.product_type AS t
LEFT JOIN hrwsi.products AS p ON p.product_type_id = t.id
GROUP BY t.code
ORDER BY t.code

-- name: metrics_failed_for_good
-- The latest tasks that ended without a processed status and were not cancelled, newest first,
-- with their last message.
SELECT pt.id, i.processing_condition_name, i.input_path,
       (SELECT w.message
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = pt.id
        ORDER BY w.id DESC LIMIT 1) AS last_message
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
WHERE pt.has_ended AND NOT EXISTS (
    SELECT 1 FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
    WHERE d.processing_task_fk_id = pt.id AND w.processing_status_id = 2)
  AND NOT EXISTS (SELECT 1 FROM hrwsi.task_cancel AS c WHERE c.processing_task_id = pt.id)
ORDER BY pt.id DESC
LIMIT %(limit)s

-- name: metrics_bench_fill_vm
-- Benchmarks only: the one virtual machine every synthetic task runs on.
INSERT INTO hrwsi.virtual_machine (id, name, flavour)
VALUES ('00000000-0000-0000-0000-0000000000b1', 'bench-dashboard', 'MAJA')

-- name: metrics_bench_fill_inputs
-- Benchmarks only: `count` synthetic inputs, alternately MAJA_PC and FSC_PC (generate_series).
INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day, input_path,
                         mission)
SELECT CASE WHEN mod(g, 2) = 0 THEN 'MAJA_PC' ELSE 'FSC_PC' END,
       timestamp '2024-01-01' + g * interval '1 second', '31TCH', 20240101,
       '/bench/dashboard/' || g, 'S2'
FROM generate_series(1, %(count)s::bigint) AS g

-- name: metrics_bench_fill_tasks
-- Benchmarks only: a task for 9 inputs in 10 (1 in 25 still live), an older ended one for 1 in 5.
INSERT INTO hrwsi.processing_tasks (input_fk_id, virtual_machine_id, creation_date, has_ended)
SELECT i.id, '00000000-0000-0000-0000-0000000000b1', i.date,
       NOT (copy = 1 AND mod(i.id, 25) = 1)
FROM hrwsi.input AS i
CROSS JOIN generate_series(1, 2) AS copy
WHERE mod(i.id, 10) <> 0 AND (copy = 1 OR mod(i.id, 5) = 3)

-- name: metrics_bench_fill_dispatches
-- Benchmarks only: 1 to 3 attempts per task (none for half of the live tasks: still pending).
INSERT INTO hrwsi.nomad_job_dispatch (processing_task_fk_id, nomad_job_dispatch, dispatch_date)
SELECT pt.id, 'task-' || pt.id || '-attempt-' || n, pt.creation_date
FROM hrwsi.processing_tasks AS pt
CROSS JOIN LATERAL generate_series(
    1, CASE WHEN NOT pt.has_ended AND mod(pt.id, 2) = 0 THEN 0 ELSE 1 + mod(pt.id, 3) END) AS n

-- name: metrics_bench_fill_statuses
-- Benchmarks only: started for every attempt, then failed (3/4) for all but the last attempt,
-- processed for the last attempt of an ended task (1 in 7 failed for good instead).
INSERT INTO hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id, processing_status_id,
                                              date, message)
SELECT a.id, s.status, a.dispatch_date, CASE WHEN s.status IN (3, 4) THEN 'exit code 1' END
FROM (
    SELECT d.id, d.dispatch_date, pt.id AS task_id, pt.has_ended,
           d.id = max(d.id) OVER (PARTITION BY d.processing_task_fk_id) AS last
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
) AS a
CROSS JOIN LATERAL (VALUES (1), (
    CASE WHEN NOT a.last THEN 3 + mod(a.id, 2)
         WHEN NOT a.has_ended THEN NULL
         WHEN mod(a.task_id, 7) = 0 THEN 4
         ELSE 2 END)) AS s (status)
WHERE s.status IS NOT NULL

-- name: metrics_bench_fill_products
-- Benchmarks only: a product per processed attempt, and a second one for 1 input in 4.
INSERT INTO hrwsi.products (input_fk_id, product_path, creation_date, catalogued_date,
                            product_type_id)
SELECT pt.input_fk_id, '/bench/products/' || w.id || '/' || k, w.date, w.date, k
FROM hrwsi.processing_status_workflow AS w
JOIN hrwsi.nomad_job_dispatch AS d ON d.id = w.nomad_job_dispatch_fk_id
JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
CROSS JOIN generate_series(1, 2) AS k
WHERE w.processing_status_id = 2 AND (k = 1 OR mod(pt.input_fk_id, 4) = 0)

-- name: metrics_bench_analyze
-- Benchmarks only: fresh planner statistics (and visibility map) after the bulk fill.
VACUUM ANALYZE hrwsi.input, hrwsi.processing_tasks, hrwsi.nomad_job_dispatch,
    hrwsi.processing_status_workflow, hrwsi.products

-- name: metrics_bench_table_sizes
-- Benchmarks only: rows in each table the chain summary reads.
SELECT (SELECT count(*) FROM hrwsi.input) AS inputs,
       (SELECT count(*) FROM hrwsi.processing_tasks) AS tasks,
       (SELECT count(*) FROM hrwsi.nomad_job_dispatch) AS dispatches,
       (SELECT count(*) FROM hrwsi.processing_status_workflow) AS statuses,
       (SELECT count(*) FROM hrwsi.products) AS products

-- name: metrics_bench_chain_summary_fan_out
-- Benchmarks and tests only: metrics_chain_summary as it was (one fan-out join, count(DISTINCT)), the reference.
SELECT
    i.processing_condition_name AS condition,
    count(DISTINCT i.id) AS inputs,
    count(DISTINCT pt.id) AS tasks,
    count(DISTINCT d.id) AS attempts,
    count(DISTINCT w.id) FILTER (WHERE w.processing_status_id IN (3, 4)) AS failed_attempts,
    count(DISTINCT p.input_fk_id) AS inputs_with_product,
    count(DISTINCT pt.id) FILTER (WHERE pt.has_ended) AS tasks_ended
FROM hrwsi.input AS i
LEFT JOIN hrwsi.processing_tasks AS pt ON pt.input_fk_id = i.id
LEFT JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = pt.id
LEFT JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
LEFT JOIN hrwsi.products AS p ON p.input_fk_id = i.id
GROUP BY i.processing_condition_name
ORDER BY i.processing_condition_name
