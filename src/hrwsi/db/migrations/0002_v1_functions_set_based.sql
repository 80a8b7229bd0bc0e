-- The v1 SQL functions, same names, argument types and result types, written as single
-- set-based SQL statements (no per-row function calls). CREATE OR REPLACE keeps grants and
-- replaces the original plpgsql bodies of an upgraded v1 database. The parameters keep their
-- v1 names: PostgreSQL refuses to rename (or unname) an input parameter in CREATE OR REPLACE,
-- and operators may call the functions with named notation (path => ...).

CREATE OR REPLACE FUNCTION hrwsi.get_input_by_input_path(path text)
RETURNS SETOF hrwsi.input LANGUAGE sql STABLE AS $$
    SELECT i.* FROM hrwsi.input AS i WHERE i.input_path = $1 ORDER BY i.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_input_by_measurement_day(day bigint)
RETURNS SETOF hrwsi.input LANGUAGE sql STABLE AS $$
    SELECT i.* FROM hrwsi.input AS i WHERE i.measurement_day = $1 ORDER BY i.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_input_by_mission(miss text)
RETURNS SETOF hrwsi.input LANGUAGE sql STABLE AS $$
    SELECT i.* FROM hrwsi.input AS i WHERE i.mission = $1 ORDER BY i.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_input_by_input_type(in_type text)
RETURNS SETOF hrwsi.input LANGUAGE sql STABLE AS $$
    SELECT i.*
    FROM hrwsi.input AS i
    JOIN hrwsi.processing_condition AS pc ON pc.name = i.processing_condition_name
    JOIN hrwsi.processing_routine AS pr ON pr.name = pc.processing_routine_name
    WHERE pr.input_type = $1
    ORDER BY i.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_input_without_processing_task()
RETURNS SETOF hrwsi.input LANGUAGE sql STABLE AS $$
    SELECT i.*
    FROM hrwsi.input AS i
    WHERE NOT EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = i.id)
    ORDER BY i.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_number_of_error_statuses_by_processing_task(processing_task_id bigint)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*)
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
    WHERE d.processing_task_fk_id = $1 AND w.processing_status_id IN (3, 4)
$$;

CREATE OR REPLACE FUNCTION hrwsi.is_processing_task_processed(processing_task_id bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = $1 AND w.processing_status_id = 2
    )
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_processing_tasks_not_finished()
RETURNS SETOF hrwsi.processing_tasks LANGUAGE sql STABLE AS $$
    SELECT pt.* FROM hrwsi.processing_tasks AS pt WHERE pt.has_ended = false ORDER BY pt.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_status_history_by_processing_task_id(processing_task_id bigint)
RETURNS SETOF hrwsi.processing_status_history LANGUAGE sql STABLE AS $$
    SELECT w.id, w.date, s.code, s.name, w.message
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
    JOIN hrwsi.processing_status AS s ON s.id = w.processing_status_id
    WHERE d.processing_task_fk_id = $1
    ORDER BY w.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_nomad_job_dispatch_list_by_processing_task_id(
    processing_task_id bigint
)
RETURNS SETOF hrwsi.nomad_job_dispatch_info LANGUAGE sql STABLE AS $$
    SELECT pt.nomad_job_id, d.nomad_job_dispatch, d.dispatch_date, d.log_path
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
    WHERE d.processing_task_fk_id = $1
    ORDER BY d.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_current_nomad_job_dispatch_by_processing_task_id(
    processing_task_id bigint
)
RETURNS SETOF hrwsi.nomad_job_dispatch_info LANGUAGE sql STABLE AS $$
    SELECT pt.nomad_job_id, d.nomad_job_dispatch, d.dispatch_date, d.log_path
    FROM hrwsi.nomad_job_dispatch AS d
    JOIN hrwsi.processing_tasks AS pt ON pt.id = d.processing_task_fk_id
    WHERE d.processing_task_fk_id = $1
    ORDER BY d.id DESC
    LIMIT 1
$$;

-- One row: true when every task of the VM is processed, NULL when the VM has no task.
CREATE OR REPLACE FUNCTION hrwsi.are_all_processing_tasks_in_vm_processed(vm_id uuid)
RETURNS SETOF boolean LANGUAGE sql STABLE AS $$
    SELECT bool_and(EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = pt.id AND w.processing_status_id = 2
    ))
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.virtual_machine_id = $1
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_preceding_processing_task(processing_task_id bigint)
RETURNS SETOF hrwsi.processing_tasks LANGUAGE sql STABLE AS $$
    SELECT prev.*
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.processing_tasks AS prev ON prev.input_fk_id = pt.preceding_input_id
    WHERE pt.id = $1
    ORDER BY prev.id
$$;

-- One row per preceding task: whether it is processed.
CREATE OR REPLACE FUNCTION hrwsi.is_preceding_processing_task_processed(processing_task_id bigint)
RETURNS SETOF boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = prev.id AND w.processing_status_id = 2
    )
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.processing_tasks AS prev ON prev.input_fk_id = pt.preceding_input_id
    WHERE pt.id = $1
    ORDER BY prev.id
$$;

-- One row: whether some task of the input is processed; NULL when the input has no task (v1
-- aggregated over the input's tasks).
CREATE OR REPLACE FUNCTION hrwsi.is_one_processing_task_processed_for_an_input(input_id bigint)
RETURNS SETOF boolean LANGUAGE sql STABLE AS $$
    SELECT bool_or(EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = pt.id AND w.processing_status_id = 2
    ))
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.input_fk_id = $1
$$;

-- The input has tasks and none has has_ended = false: as in v1, a task whose has_ended is NULL
-- does not hold the input back.
CREATE OR REPLACE FUNCTION hrwsi.are_all_processing_tasks_ended_for_an_input(input_id bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = $1)
        AND NOT EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS pt
            WHERE pt.input_fk_id = $1 AND pt.has_ended = false
        )
$$;

-- Tasks with no dispatch yet whose preceding input is NULL or has a processed task.
CREATE OR REPLACE FUNCTION hrwsi.get_ids_of_processing_tasks_ready_to_be_launched()
RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT pt.id
    FROM hrwsi.processing_tasks AS pt
    WHERE NOT EXISTS (
            SELECT 1 FROM hrwsi.nomad_job_dispatch AS d WHERE d.processing_task_fk_id = pt.id
        )
        AND (
            pt.preceding_input_id IS NULL
            OR EXISTS (
                SELECT 1
                FROM hrwsi.processing_tasks AS prev
                JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = prev.id
                JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
                WHERE prev.input_fk_id = pt.preceding_input_id AND w.processing_status_id = 2
            )
        )
    ORDER BY pt.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_product_data_type_of_processing_tasks_not_ended()
RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT DISTINCT pr.product_data_type
    FROM hrwsi.processing_tasks AS pt
    JOIN hrwsi.input AS i ON i.id = pt.input_fk_id
    JOIN hrwsi.processing_condition AS pc ON pc.name = i.processing_condition_name
    JOIN hrwsi.processing_routine AS pr ON pr.name = pc.processing_routine_name
    WHERE pt.has_ended = false
    ORDER BY 1
$$;

-- One row per task created after the date with has_ended = true whose input has no task
-- with has_ended = false and no processed task (over all its tasks, whatever their date). An
-- input with two such tasks comes out twice: v1 returned one row per task, and so do we.
CREATE OR REPLACE FUNCTION hrwsi.get_id_of_unprocessed_inputs_with_all_pt_ended(
    pt_creation_date timestamp
)
RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT pt.input_fk_id
    FROM hrwsi.processing_tasks AS pt
    WHERE pt.has_ended = true
        AND pt.creation_date > $1
        AND NOT EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks AS other
            WHERE other.input_fk_id = pt.input_fk_id AND other.has_ended = false
        )
        AND NOT EXISTS (
            SELECT 1
            FROM hrwsi.processing_tasks AS other
            JOIN hrwsi.nomad_job_dispatch AS d ON d.processing_task_fk_id = other.id
            JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
            WHERE other.input_fk_id = pt.input_fk_id AND w.processing_status_id = 2
        )
    ORDER BY pt.input_fk_id, pt.id
$$;

CREATE OR REPLACE FUNCTION hrwsi.is_product_indexed(product_id bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM hrwsi.indexation_workflow AS iw
        WHERE iw.product_fk_id = $1 AND iw.indexation_date IS NOT NULL
    )
$$;

CREATE OR REPLACE FUNCTION hrwsi.is_product_indexation_currently_failed(product_id bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT iw.failure_date IS NOT NULL
        FROM hrwsi.indexation_workflow AS iw
        WHERE iw.product_fk_id = $1
        ORDER BY iw.id DESC
        LIMIT 1
    ), false)
$$;

CREATE OR REPLACE FUNCTION hrwsi.get_indexation_file_path_by_type_name_by_product_id(
    type_name text, product_id bigint
)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT j.path
    FROM hrwsi.indexation_json AS j
    JOIN hrwsi.indexation_file_type AS t ON t.id = j.indexation_file_type_id
    WHERE t.name = $1 AND j.product_fk_id = $2
    ORDER BY j.id
    LIMIT 1
$$;
