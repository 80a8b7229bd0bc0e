-- Timeliness KPIs (hrwsi kpi). One query gives the stage timestamps of every product; the
-- figures (percentiles, late products) are computed from its rows by hrwsi.domain.kpi.

-- name: kpi_stage_times
-- Per product made since a time (optionally of one condition): its stage timestamps.
-- Stable result columns (all times timestamptz): product_id, condition, timeliness_class,
-- product_path, sensing, publication, harvest, planned, dispatched, processed.
-- The two CTEs are the SOURCES of the facts; only they change when the facts move to side
-- tables (phase B: input_times joins hrwsi.input_meta for publication/harvest, task_times
-- joins hrwsi.task_state for created_at and the task's timeliness class); the final SELECT
-- is the stable shape. v1 timestamps (input.date, creation_date, dispatch_date) are UTC.
-- A product's task is the input's processed task (the latest one if several), else its latest.
WITH input_times AS (
    SELECT i.id AS input_id,
           i.processing_condition_name AS condition,
           i.date AT TIME ZONE 'UTC' AS sensing,
           m.publication_date AS publication,
           m.inserted_at AS harvest
    FROM hrwsi.input AS i
    LEFT JOIN hrwsi.input_meta AS m ON m.input_id = i.id
), task_times AS (
    SELECT pt.id AS task_id,
           pt.input_fk_id AS input_id,
           'archive'::text AS timeliness_class,
           pt.creation_date AT TIME ZONE 'UTC' AS planned,
           (SELECT min(d.dispatch_date) FROM hrwsi.nomad_job_dispatch AS d
            WHERE d.processing_task_fk_id = pt.id) AT TIME ZONE 'UTC' AS dispatched,
           EXISTS (SELECT 1 FROM hrwsi.nomad_job_dispatch AS d
                   JOIN hrwsi.processing_status_workflow AS w
                     ON w.nomad_job_dispatch_fk_id = d.id
                   WHERE d.processing_task_fk_id = pt.id AND w.processing_status_id = 2)
               AS processed_ok
    FROM hrwsi.processing_tasks AS pt
)
SELECT p.id AS product_id,
       it.condition,
       coalesce(t.timeliness_class, 'archive') AS timeliness_class,
       p.product_path,
       it.sensing,
       it.publication,
       it.harvest,
       t.planned,
       t.dispatched,
       p.creation_date AT TIME ZONE 'UTC' AS processed
FROM hrwsi.products AS p
JOIN input_times AS it ON it.input_id = p.input_fk_id
LEFT JOIN LATERAL (
    SELECT tt.timeliness_class, tt.planned, tt.dispatched
    FROM task_times AS tt
    WHERE tt.input_id = p.input_fk_id
    ORDER BY tt.processed_ok DESC, tt.task_id DESC
    LIMIT 1
) AS t ON true
WHERE p.creation_date >= (%(since)s::timestamptz AT TIME ZONE 'UTC')
  AND (%(condition)s::text IS NULL OR it.condition = %(condition)s::text)
ORDER BY p.id
