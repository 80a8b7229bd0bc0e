-- name: orchestrator_try_lock
-- Take the planning lock for this transaction; false when another replica is planning.
SELECT pg_try_advisory_xact_lock(%(key)s)

-- name: orchestrator_sweep_backlog
-- Queue every input needing a task (none yet, or all ended unprocessed with attempts left).
WITH fresh AS (
    SELECT i.id
    FROM hrwsi.input AS i
    WHERE NOT EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = i.id)
      -- rules (issue 10): an input a rule task uses, or a rule skipped, needs nothing
      AND NOT EXISTS (SELECT 1 FROM hrwsi.task_input AS ti WHERE ti.input_id = i.id)
      AND NOT EXISTS (SELECT 1 FROM hrwsi.rule_skip AS rs WHERE rs.input_id = i.id)
),
processed_task AS (
    SELECT DISTINCT d.processing_task_fk_id AS task_id
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
    WHERE w.processing_status_id = 2
),
replan AS (
    SELECT pt.input_fk_id AS id
    FROM hrwsi.processing_tasks AS pt
    LEFT JOIN processed_task AS p ON p.task_id = pt.id
    WHERE pt.input_fk_id IS NOT NULL
    GROUP BY pt.input_fk_id
    HAVING bool_and(coalesce(pt.has_ended, false))
        AND bool_and(p.task_id IS NULL)
        AND count(*) < %(max_tasks_per_input)s
),
queued AS (
    INSERT INTO hrwsi.orchestrator_backlog (input_id)
    SELECT id FROM fresh UNION SELECT id FROM replan
    ON CONFLICT DO NOTHING
    RETURNING input_id
)
SELECT count(*) FROM queued

-- name: orchestrator_session
-- Session settings for the orchestrator: its statements are short, JIT compiling only slows them.
SET jit = off

-- name: orchestrator_backlog_ids
-- The oldest backlog candidates; a pass then checks them against the tables.
SELECT b.input_id FROM hrwsi.orchestrator_backlog AS b
-- console: nothing is planned for a paused condition (its inputs stay queued)
WHERE NOT EXISTS (
    SELECT 1 FROM hrwsi.condition_pause AS cp
    JOIN hrwsi.input AS pi ON pi.processing_condition_name = cp.processing_condition_name
    WHERE pi.id = b.input_id
)
ORDER BY b.input_id LIMIT %(limit)s

-- name: orchestrator_pending_inputs
-- Of the given candidates, unqueue those needing no task or gone; return the others with their routine.
WITH candidate AS (
    SELECT i.id, i.processing_condition_name AS condition, c.processing_routine_name AS routine,
        EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS pt
            WHERE pt.input_fk_id = i.id AND pt.has_ended IS NOT TRUE
        )
        OR EXISTS (
            SELECT 1
            FROM hrwsi.processing_tasks AS pt
            JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = pt.id
            JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
            WHERE pt.input_fk_id = i.id AND w.processing_status_id = 2
        )
        OR (SELECT count(*) FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = i.id)
            >= %(max_tasks_per_input)s
        -- console: an input whose task was cancelled is never re-planned automatically
        OR EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS pt
            JOIN hrwsi.task_cancel AS tc ON tc.processing_task_id = pt.id
            WHERE pt.input_fk_id = i.id
        ) AS stale
    FROM hrwsi.input AS i
    JOIN hrwsi.processing_condition AS c ON c.name = i.processing_condition_name
    WHERE i.id = ANY(%(ids)s::bigint[])
),
unqueued AS (
    -- Stale candidates, and ids whose input is gone (the backlog has no foreign key: it is a
    -- cache, and a per-row key check would slow every harvested batch down).
    DELETE FROM hrwsi.orchestrator_backlog AS b
    WHERE b.input_id = ANY(%(ids)s::bigint[])
        AND b.input_id NOT IN (SELECT id FROM candidate WHERE NOT stale)
    RETURNING b.input_id
)
SELECT id, condition, routine FROM candidate WHERE NOT stale ORDER BY id

-- name: orchestrator_busy_vms
-- VMs with a task not ended yet, with their flavour's resources (they still hold quota).
SELECT vm.id, vm.name, vm.flavour, coalesce(plan.pooled, false) AS pooled,
       coalesce(r.cpu, 0), coalesce(r.ram, 0), coalesce(r.storage_space, 0)
FROM hrwsi.virtual_machine AS vm
LEFT JOIN hrwsi.vm_plan AS plan ON plan.virtual_machine_id = vm.id
LEFT JOIN hrwsi.processing_routine AS r ON r.name = vm.flavour
WHERE vm.id IN (
    SELECT pt.virtual_machine_id FROM hrwsi.processing_tasks AS pt WHERE pt.has_ended IS NOT TRUE
)

-- name: orchestrator_routines
-- The routines the planner can use: resources and a duration all given and positive.
SELECT name, cpu, ram, storage_space, duration
FROM hrwsi.processing_routine
WHERE cpu > 0 AND ram > 0 AND storage_space > 0 AND duration > 0
ORDER BY name

-- name: orchestrator_ensure_pool
-- Make sure each configured worker has its virtual_machine row and its vm_plan row (found by pooled_name; flavour kept up to date).
WITH worker AS (
    SELECT w.name, w.flavour
    FROM unnest(%(names)s::text[], %(flavours)s::text[]) AS w (name, flavour)
),
known AS (
    SELECT plan.virtual_machine_id AS id, plan.pooled_name AS name
    FROM hrwsi.vm_plan AS plan
    WHERE plan.pooled_name = ANY(%(names)s::text[])
),
reflavoured AS (
    UPDATE hrwsi.virtual_machine AS vm SET flavour = w.flavour
    FROM known AS k
    JOIN worker AS w ON w.name = k.name
    WHERE vm.id = k.id AND vm.flavour IS DISTINCT FROM w.flavour
    RETURNING vm.id
),
fresh AS MATERIALIZED (
    SELECT gen_random_uuid() AS id, w.name, w.flavour
    FROM worker AS w
    WHERE NOT EXISTS (SELECT 1 FROM known AS k WHERE k.name = w.name)
),
-- The unique pooled_name decides between two passes adding the same worker at once: the
-- VM row is written only with the plan row that won.
planned AS (
    INSERT INTO hrwsi.vm_plan (virtual_machine_id, pooled, pooled_name)
    SELECT f.id, true, f.name FROM fresh AS f
    ON CONFLICT (pooled_name) DO NOTHING
    RETURNING virtual_machine_id
)
INSERT INTO hrwsi.virtual_machine (id, name, flavour)
SELECT f.id, f.name, f.flavour
FROM fresh AS f
JOIN planned AS p ON p.virtual_machine_id = f.id

-- name: orchestrator_pool_workers
-- The pool's VM rows with the input of each one's last live task (to chain new tasks after it).
SELECT vm.id, vm.name, vm.flavour, tail.input_fk_id
FROM hrwsi.vm_plan AS plan
JOIN hrwsi.virtual_machine AS vm ON vm.id = plan.virtual_machine_id
LEFT JOIN LATERAL (
    SELECT pt.input_fk_id
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.virtual_machine_id = vm.id AND pt.has_ended IS NOT TRUE
    ORDER BY pt.id DESC
    LIMIT 1
) AS tail ON true
WHERE plan.pooled_name = ANY(%(names)s::text[])

-- name: orchestrator_write_plan
-- Write a plan's new VMs and its tasks (in chain order) with their plan rows, unqueue its inputs: one statement.
WITH vm AS (
    SELECT v.id, v.name, v.flavour, v.start_min, v.stop_min
    FROM unnest(%(vm_ids)s::uuid[], %(vm_names)s::text[], %(vm_flavours)s::text[],
                %(vm_starts)s::integer[], %(vm_stops)s::integer[])
        AS v (id, name, flavour, start_min, stop_min)
),
new_vm AS (
    INSERT INTO hrwsi.virtual_machine (id, name, flavour)
    SELECT v.id, v.name, v.flavour FROM vm AS v
    RETURNING id
),
new_vm_plan AS (
    INSERT INTO hrwsi.vm_plan (virtual_machine_id, planned_start_min, planned_stop_min)
    SELECT v.id, v.start_min, v.stop_min FROM vm AS v
),
task AS (
    SELECT t.input_id, t.vm_id, t.preceding_input_id, t.start_min, t.end_min, t.position
    FROM unnest(%(task_inputs)s::bigint[], %(task_vms)s::uuid[], %(task_preceding)s::bigint[],
                %(task_starts)s::integer[], %(task_ends)s::integer[])
        WITH ORDINALITY AS t (input_id, vm_id, preceding_input_id, start_min, end_min, position)
),
new_task AS (
    INSERT INTO hrwsi.processing_tasks
        (input_fk_id, virtual_machine_id, creation_date, preceding_input_id, has_ended)
    SELECT t.input_id, t.vm_id, now() AT TIME ZONE 'UTC', t.preceding_input_id, false
    FROM task AS t
    ORDER BY t.position
    RETURNING id, input_fk_id
),
-- A plan gives an input one task (and an input has one live task at most): the input
-- identifies the new task's plan row.
new_task_state AS (
    INSERT INTO hrwsi.task_state (processing_task_id, planned_start_min, planned_end_min)
    SELECT n.id, t.start_min, t.end_min
    FROM new_task AS n
    JOIN task AS t ON t.input_id = n.input_fk_id
),
planned AS (
    DELETE FROM hrwsi.orchestrator_backlog
    WHERE input_id = ANY(%(task_inputs)s::bigint[])
    RETURNING input_id
)
SELECT (SELECT count(*) FROM new_vm), (SELECT count(*) FROM new_task),
       (SELECT count(*) FROM planned)

-- name: orchestrator_release_orphans
-- Unchain tasks waiting behind given inputs that ended unprocessed; wake the launcher.
WITH released AS (
    UPDATE hrwsi.processing_tasks AS s
    SET preceding_input_id = NULL
    WHERE s.has_ended IS NOT TRUE
        AND s.preceding_input_id IS NOT NULL
        AND s.preceding_input_id = ANY(%(ids)s::bigint[])
        AND NOT EXISTS (
            SELECT 1 FROM hrwsi.nomad_job_dispatch AS d WHERE d.processing_task_fk_id = s.id
        )
        AND EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS prev
            WHERE prev.input_fk_id = s.preceding_input_id
                AND prev.virtual_machine_id = s.virtual_machine_id
        )
        AND NOT EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS prev
            WHERE prev.input_fk_id = s.preceding_input_id AND prev.has_ended IS NOT TRUE
        )
        AND NOT EXISTS (
            SELECT 1
            FROM hrwsi.processing_tasks AS prev
            JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = prev.id
            JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
            WHERE prev.input_fk_id = s.preceding_input_id AND w.processing_status_id = 2
        )
    RETURNING s.id
)
SELECT count(*), pg_notify('processing_task_insertion', json_build_object(
    'count', count(*), 'min_id', min(id), 'max_id', max(id))::text)
FROM released
HAVING count(*) > 0

-- name: orchestrator_release_all_orphans
-- Unchain every task waiting behind an input that ended unprocessed (the periodic sweep).
WITH released AS (
    UPDATE hrwsi.processing_tasks AS s
    SET preceding_input_id = NULL
    WHERE s.has_ended IS NOT TRUE
        AND s.preceding_input_id IS NOT NULL
        AND NOT EXISTS (
            SELECT 1 FROM hrwsi.nomad_job_dispatch AS d WHERE d.processing_task_fk_id = s.id
        )
        AND EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS prev
            WHERE prev.input_fk_id = s.preceding_input_id
                AND prev.virtual_machine_id = s.virtual_machine_id
        )
        AND NOT EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS prev
            WHERE prev.input_fk_id = s.preceding_input_id AND prev.has_ended IS NOT TRUE
        )
        AND NOT EXISTS (
            SELECT 1
            FROM hrwsi.processing_tasks AS prev
            JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = prev.id
            JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
            WHERE prev.input_fk_id = s.preceding_input_id AND w.processing_status_id = 2
        )
    RETURNING s.id
)
SELECT count(*), pg_notify('processing_task_insertion', json_build_object(
    'count', count(*), 'min_id', min(id), 'max_id', max(id))::text)
FROM released
HAVING count(*) > 0

-- name: orchestrator_retry_lock_task
-- Lock one task for an operator retry and report what decides whether it may be retried.
SELECT pt.id, pt.input_fk_id, pt.has_ended,
       coalesce((SELECT ts.extra_attempts FROM hrwsi.task_state AS ts
                 WHERE ts.processing_task_id = pt.id), 0) AS extra_attempts,
       EXISTS (
           SELECT 1
           FROM hrwsi.nomad_job_dispatch AS d
           JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
           WHERE d.processing_task_fk_id = pt.id AND w.processing_status_id = 2
       ) AS processed,
       (SELECT count(*) FROM hrwsi.nomad_job_dispatch AS d
        WHERE d.processing_task_fk_id = pt.id) AS dispatches,
       (SELECT min(o.id) FROM hrwsi.processing_tasks AS o
        WHERE o.input_fk_id = pt.input_fk_id AND o.id <> pt.id AND o.has_ended IS NOT TRUE)
           AS live_sibling
FROM hrwsi.processing_tasks AS pt
WHERE pt.id = %(task_id)s
FOR UPDATE OF pt

-- name: orchestrator_retry_task
-- Reopen an ended task with one more attempt, record the operator's action, wake the launcher.
WITH reopened AS (
    UPDATE hrwsi.processing_tasks SET has_ended = false
    WHERE id = %(task_id)s
    RETURNING id
),
granted AS (
    -- A task without its task_state row (written by a v1 tool) gets one; its creation time is
    -- not known, so created_at stays NULL.
    INSERT INTO hrwsi.task_state AS ts (processing_task_id, created_at, extra_attempts)
    SELECT id, NULL, 1 FROM reopened
    ON CONFLICT (processing_task_id) DO UPDATE
        SET extra_attempts = ts.extra_attempts + 1, next_attempt_at = NULL
    RETURNING processing_task_id AS id, extra_attempts
),
recorded AS (
    INSERT INTO hrwsi.task_retry
        (processing_task_fk_id, requested_by, reason, dispatches_before, extra_attempts_after)
    SELECT id, %(requested_by)s, %(reason)s, %(dispatches)s, extra_attempts FROM granted
    RETURNING processing_task_fk_id, extra_attempts_after
)
SELECT r.extra_attempts_after,
       pg_notify('processing_task_insertion', json_build_object(
           'count', 1, 'min_id', r.processing_task_fk_id, 'max_id', r.processing_task_fk_id,
           'retry', true)::text)
FROM recorded AS r

-- name: orchestrator_lock
-- Wait for the planning lock for this transaction (operator actions that change live tasks).
SELECT pg_advisory_xact_lock(%(key)s)
