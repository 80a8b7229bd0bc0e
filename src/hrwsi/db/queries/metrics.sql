-- name: metrics_dispatch_latency
-- Input commit to first dispatch, in milliseconds, for inputs inserted since a time.
SELECT
    count(*) AS inputs,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99_ms,
    max(ms) AS max_ms
FROM (
    SELECT extract(epoch FROM (min(d.created_at) - i.inserted_at)) * 1000 AS ms
    FROM hrwsi.input AS i
    JOIN hrwsi.processing_tasks AS pt ON pt.input_fk_id = i.id
    JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = pt.id
    WHERE i.inserted_at >= %(since)s
    GROUP BY i.id, i.inserted_at
) AS per_input

-- name: metrics_chain_summary
-- Per processing condition: inputs, tasks, attempts, failed attempts, and inputs with a product.
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

-- name: metrics_products_by_type
-- Products per product type code.
SELECT t.code, count(p.id)
FROM hrwsi.product_type AS t
LEFT JOIN hrwsi.products AS p ON p.product_type_id = t.id
GROUP BY t.code
ORDER BY t.code

-- name: metrics_failed_for_good
-- The latest tasks that ended without a processed status, newest first, with their last message.
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
ORDER BY pt.id DESC
LIMIT %(limit)s
