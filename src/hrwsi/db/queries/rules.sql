-- name: rules_lock
-- Serialise evaluations of one rule across replicas for this transaction.
SELECT pg_advisory_xact_lock(hashtext('hrwsi.rule'), hashtext(%(rule)s))

-- name: rules_candidates
-- The facts of the given backlog ids that belong to conditions with a rule (and their routine).
SELECT i.id, i.processing_condition_name, c.processing_routine_name, i.tile,
       i.measurement_day, i.date, i.input_path, m.product_name, t.code,
       coalesce(m.inserted_at, i.date AT TIME ZONE 'UTC')
FROM hrwsi.input AS i
JOIN hrwsi.processing_condition AS c ON c.name = i.processing_condition_name
LEFT JOIN hrwsi.input_meta AS m ON m.input_id = i.id
LEFT JOIN hrwsi.products AS p ON p.id = m.source_product_id
LEFT JOIN hrwsi.product_type AS t ON t.id = p.product_type_id
WHERE i.id = ANY(%(ids)s::bigint[])
  AND i.processing_condition_name = ANY(%(conditions)s::text[])

-- name: rules_items_tile_day
-- Every input of a condition on the given (tile, day) pairs, with its facts.
SELECT i.id, i.processing_condition_name, '', i.tile, i.measurement_day, i.date, i.input_path,
       m.product_name, t.code, coalesce(m.inserted_at, i.date AT TIME ZONE 'UTC')
FROM unnest(%(tiles)s::text[], %(days)s::bigint[]) AS k (tile, day)
JOIN hrwsi.input AS i ON i.processing_condition_name = %(condition)s
                     AND i.tile = k.tile AND i.measurement_day = k.day
LEFT JOIN hrwsi.input_meta AS m ON m.input_id = i.id
LEFT JOIN hrwsi.products AS p ON p.id = m.source_product_id
LEFT JOIN hrwsi.product_type AS t ON t.id = p.product_type_id

-- name: rules_items_days
-- Every input of a condition measured in [first, last] (on the given tiles, or all when NULL).
SELECT i.id, i.processing_condition_name, '', i.tile, i.measurement_day, i.date, i.input_path,
       m.product_name, t.code, coalesce(m.inserted_at, i.date AT TIME ZONE 'UTC')
FROM hrwsi.input AS i
LEFT JOIN hrwsi.input_meta AS m ON m.input_id = i.id
LEFT JOIN hrwsi.products AS p ON p.id = m.source_product_id
LEFT JOIN hrwsi.product_type AS t ON t.id = p.product_type_id
WHERE i.processing_condition_name = %(condition)s
  AND i.measurement_day BETWEEN %(first)s AND %(last)s
  AND (%(tiles)s::text[] IS NULL OR i.tile = ANY(%(tiles)s::text[]))

-- name: rules_history_tile_day
-- The rule's instances on the given (tile, day) pairs, each with its input ids.
SELECT ri.key, ri.tile, ri.day, coalesce(array_agg(ti.input_id) FILTER (WHERE ti.input_id
       IS NOT NULL), '{}')
FROM unnest(%(tiles)s::text[], %(days)s::date[]) AS k (tile, day)
JOIN hrwsi.rule_instance AS ri ON ri.rule = %(rule)s AND ri.tile = k.tile AND ri.day = k.day
LEFT JOIN hrwsi.task_input AS ti ON ti.processing_task_id = ri.processing_task_id
GROUP BY ri.key, ri.tile, ri.day

-- name: rules_history_days
-- The rule's instances of days [first, last], every tile, each with its input ids.
SELECT ri.key, ri.tile, ri.day, coalesce(array_agg(ti.input_id) FILTER (WHERE ti.input_id
       IS NOT NULL), '{}')
FROM hrwsi.rule_instance AS ri
LEFT JOIN hrwsi.task_input AS ti ON ti.processing_task_id = ri.processing_task_id
WHERE ri.rule = %(rule)s AND ri.day BETWEEN %(first)s AND %(last)s
GROUP BY ri.key, ri.tile, ri.day

-- name: rules_live_tasks
-- Per tile, the condition's tasks not ended, or ended with a product not yet made an input (still live for serial rules).
SELECT i.tile, pt.id
FROM hrwsi.processing_tasks AS pt
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
WHERE pt.has_ended IS NOT TRUE
  AND i.processing_condition_name = %(condition)s AND i.tile = ANY(%(tiles)s::text[])
UNION
SELECT i.tile, pt.id
FROM hrwsi.harvester_product_queue AS q
JOIN hrwsi.products AS p ON p.id = q.product_id
JOIN hrwsi.processing_tasks AS pt ON pt.input_fk_id = p.input_fk_id
JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
WHERE i.processing_condition_name = %(condition)s AND i.tile = ANY(%(tiles)s::text[])

-- name: rules_gates
-- Per measurement day and gating condition, the work not finished: live tasks, inputs still in the backlog, products not yet made inputs.
SELECT i.measurement_day, i.processing_condition_name, count(*)
FROM (
    SELECT pt.input_fk_id AS id FROM hrwsi.processing_tasks AS pt WHERE pt.has_ended IS NOT TRUE
    UNION ALL
    SELECT b.input_id FROM hrwsi.orchestrator_backlog AS b
    UNION ALL
    SELECT p.input_fk_id
    FROM hrwsi.harvester_product_queue AS q
    JOIN hrwsi.products AS p ON p.id = q.product_id
) AS u
JOIN hrwsi.input AS i ON i.id = u.id
WHERE i.processing_condition_name = ANY(%(conditions)s::text[])
  AND i.measurement_day BETWEEN %(first)s AND %(last)s
GROUP BY 1, 2

-- name: rules_first_day
-- The earliest measurement day among the inputs of a condition still in the backlog (where a composite without a watermark starts).
SELECT min(i.measurement_day)
FROM hrwsi.orchestrator_backlog AS b
JOIN hrwsi.input AS i ON i.id = b.input_id
WHERE i.processing_condition_name = %(condition)s

-- name: rules_watermark
-- The last day a composite rule composited (no row: never).
SELECT day FROM hrwsi.rule_watermark WHERE rule = %(rule)s

-- name: rules_advance_watermark
-- Move a composite rule's watermark forward (never back).
INSERT INTO hrwsi.rule_watermark AS w (rule, day) VALUES (%(rule)s, %(day)s)
ON CONFLICT (rule) DO UPDATE SET day = GREATEST(w.day, EXCLUDED.day), updated_at = clock_timestamp()

-- name: rules_live_primaries
-- Which of the given inputs are the primary input of a live task.
SELECT DISTINCT pt.input_fk_id
FROM hrwsi.processing_tasks AS pt
WHERE pt.input_fk_id = ANY(%(ids)s::bigint[]) AND pt.has_ended IS NOT TRUE

-- name: rules_skip
-- Record inputs a rule will never use (with the reason); they leave the backlog.
INSERT INTO hrwsi.rule_skip (input_id, rule, reason)
SELECT s.input_id, s.rule, s.reason
FROM unnest(%(ids)s::bigint[], %(rules)s::text[], %(reasons)s::text[]) AS s (input_id, rule, reason)
ON CONFLICT (input_id) DO NOTHING

-- name: rules_unqueue
-- Take the given inputs off the orchestrator backlog (consumed, skipped or not the rule's).
DELETE FROM hrwsi.orchestrator_backlog WHERE input_id = ANY(%(ids)s::bigint[])

-- name: rules_record
-- For each proposal whose primary got its task in this pass: the rule instance, its task inputs and params; returns (instances, tasks matched).
WITH proposal AS (
    SELECT p.key, p.rule, p.tile, p.day, p.primary_id, p.params
    FROM unnest(%(keys)s::text[], %(rules)s::text[], %(tiles)s::text[], %(days)s::date[],
                %(primaries)s::bigint[], %(params)s::jsonb[])
        AS p (key, rule, tile, day, primary_id, params)
),
matched AS MATERIALIZED (
    SELECT p.*, pt.id AS task_id
    FROM proposal AS p
    JOIN hrwsi.processing_tasks AS pt ON pt.input_fk_id = p.primary_id AND pt.has_ended IS NOT TRUE
    WHERE NOT EXISTS (SELECT 1 FROM hrwsi.task_input AS ti WHERE ti.processing_task_id = pt.id)
),
instance AS (
    INSERT INTO hrwsi.rule_instance (key, rule, tile, day, processing_task_id)
    SELECT m.key, m.rule, m.tile, m.day, m.task_id FROM matched AS m
    ON CONFLICT (key) DO NOTHING
    RETURNING key, processing_task_id
),
link AS (
    INSERT INTO hrwsi.task_input (processing_task_id, input_id, role)
    SELECT DISTINCT ON (i.processing_task_id, l.input_id) i.processing_task_id, l.input_id, l.role
    FROM unnest(%(link_keys)s::text[], %(link_inputs)s::bigint[], %(link_roles)s::text[])
        WITH ORDINALITY AS l (key, input_id, role, n)
    JOIN instance AS i ON i.key = l.key
    ORDER BY i.processing_task_id, l.input_id, l.n
    RETURNING input_id
),
param AS (
    INSERT INTO hrwsi.task_params (processing_task_id, params)
    SELECT i.processing_task_id, m.params
    FROM instance AS i JOIN matched AS m ON m.key = i.key
    WHERE m.params <> '{}'::jsonb
),
unqueued AS (
    DELETE FROM hrwsi.orchestrator_backlog
    WHERE input_id IN (SELECT input_id FROM link)
)
SELECT (SELECT count(*) FROM instance), (SELECT count(*) FROM matched),
       coalesce((SELECT array_agg(key) FROM instance), '{}')

-- name: rules_task_extras
-- For the given tasks: their inputs (role and path, the primary first; empty for a single-input task) and their params.
SELECT pt.id AS task_id,
       coalesce((SELECT json_agg(json_build_object('role', ti.role, 'path', i.input_path)
                                 ORDER BY (ti.input_id = pt.input_fk_id) DESC, ti.input_id)
                 FROM hrwsi.task_input AS ti
                 JOIN hrwsi.input AS i ON i.id = ti.input_id
                 WHERE ti.processing_task_id = pt.id), '[]'::json) AS inputs,
       coalesce(tp.params, '{}'::jsonb) AS params
FROM hrwsi.processing_tasks AS pt
LEFT JOIN hrwsi.task_params AS tp ON tp.processing_task_id = pt.id
WHERE pt.id = ANY(%(ids)s::bigint[])

-- name: rules_routine
-- The routine of a processing condition.
SELECT processing_routine_name FROM hrwsi.processing_condition WHERE name = %(condition)s
