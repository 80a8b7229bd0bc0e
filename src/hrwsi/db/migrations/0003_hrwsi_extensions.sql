-- hrwsi extensions on top of the v1 model: idempotent harvesting, indexes on every foreign
-- key and hot access path, columns the services need, and wake-up channels.

-- Inputs: unique per (processing condition, input path), so a harvest can be repeated. An
-- upgraded v1 database that already holds duplicates stops here with a clear message rather
-- than losing any row.
DO $$
DECLARE
    duplicates bigint;
    example text;
BEGIN
    SELECT count(*), min(format('(%L, %L)', d.processing_condition_name, d.input_path))
    INTO duplicates, example
    FROM (
        SELECT processing_condition_name, input_path FROM hrwsi.input
        WHERE input_path IS NOT NULL
        GROUP BY processing_condition_name, input_path HAVING count(*) > 1
    ) AS d;
    IF duplicates > 0 THEN
        RAISE EXCEPTION 'hrwsi.input holds % (processing_condition_name, input_path) pairs more '
            'than once, e.g. %; merge them before migrating', duplicates, example;
    END IF;
END
$$;

-- The v1 DDL declared its foreign-key columns as bigserial: each has a sequence and a
-- DEFAULT nextval(...), so an INSERT that forgot the key silently pointed at whatever row had
-- the next number. Drop those defaults and sequences (nothing else uses them), and add the
-- NOT NULLs that v1 had, so that an upgraded database has the schema of a fresh install.
DO $$
DECLARE
    fk record;
    seq text;
BEGIN
    FOR fk IN
        SELECT * FROM (VALUES
            ('processing_tasks', 'input_fk_id'),
            ('nomad_job_dispatch', 'processing_task_fk_id'),
            ('processing_status_workflow', 'nomad_job_dispatch_fk_id'),
            ('products', 'input_fk_id'),
            ('indexation_json', 'product_fk_id'),
            ('indexation_workflow', 'product_fk_id')
        ) AS v (tab, col)
    LOOP
        seq := pg_get_serial_sequence(format('hrwsi.%I', fk.tab), fk.col);
        IF seq IS NOT NULL THEN
            EXECUTE format('ALTER TABLE hrwsi.%I ALTER COLUMN %I DROP DEFAULT', fk.tab, fk.col);
            EXECUTE format('DROP SEQUENCE %s', seq);
        END IF;
    END LOOP;
END
$$;

ALTER TABLE hrwsi.processing_tasks ALTER COLUMN input_fk_id SET NOT NULL;
ALTER TABLE hrwsi.indexation_failure_type
    ALTER COLUMN code SET NOT NULL,
    ALTER COLUMN name SET NOT NULL;
ALTER TABLE hrwsi.indexation_file_type ALTER COLUMN name SET NOT NULL;
ALTER TABLE hrwsi.log_levels
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN name SET NOT NULL;

ALTER TABLE hrwsi.input
    ADD COLUMN IF NOT EXISTS catalogue_id text,
    ADD COLUMN IF NOT EXISTS product_name text,
    ADD COLUMN IF NOT EXISTS publication_date timestamptz,
    ADD COLUMN IF NOT EXISTS source_product_id bigint,
    ADD COLUMN IF NOT EXISTS inserted_at timestamptz NOT NULL DEFAULT clock_timestamp();

CREATE UNIQUE INDEX IF NOT EXISTS input_condition_path_key
    ON hrwsi.input (processing_condition_name, input_path);
CREATE INDEX IF NOT EXISTS input_measurement_day_idx ON hrwsi.input (measurement_day);
CREATE INDEX IF NOT EXISTS input_mission_idx ON hrwsi.input (mission);
CREATE INDEX IF NOT EXISTS input_input_path_idx ON hrwsi.input (input_path);
CREATE INDEX IF NOT EXISTS input_source_product_idx ON hrwsi.input (source_product_id);

-- Tasks: has_ended is false until the task ends (v1 left it NULL on insert).
ALTER TABLE hrwsi.processing_tasks ALTER COLUMN has_ended SET DEFAULT false;
ALTER TABLE hrwsi.processing_tasks
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT clock_timestamp();

-- Every foreign key gets an index (PostgreSQL does not create them).
CREATE INDEX IF NOT EXISTS processing_condition_routine_idx
    ON hrwsi.processing_condition (processing_routine_name);
CREATE INDEX IF NOT EXISTS processing_tasks_input_idx ON hrwsi.processing_tasks (input_fk_id);
CREATE INDEX IF NOT EXISTS processing_tasks_vm_idx ON hrwsi.processing_tasks (virtual_machine_id);
CREATE INDEX IF NOT EXISTS processing_tasks_preceding_input_idx
    ON hrwsi.processing_tasks (preceding_input_id);
CREATE INDEX IF NOT EXISTS processing_tasks_not_ended_idx
    ON hrwsi.processing_tasks (id) WHERE has_ended = false;
CREATE INDEX IF NOT EXISTS processing_tasks_creation_date_idx
    ON hrwsi.processing_tasks (creation_date);
CREATE INDEX IF NOT EXISTS nomad_job_dispatch_task_idx
    ON hrwsi.nomad_job_dispatch (processing_task_fk_id);
CREATE INDEX IF NOT EXISTS processing_status_workflow_dispatch_idx
    ON hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id);
CREATE INDEX IF NOT EXISTS processing_status_workflow_status_idx
    ON hrwsi.processing_status_workflow (processing_status_id);
CREATE INDEX IF NOT EXISTS products_input_idx ON hrwsi.products (input_fk_id);
CREATE INDEX IF NOT EXISTS products_product_type_idx ON hrwsi.products (product_type_id);
CREATE INDEX IF NOT EXISTS indexation_json_product_idx ON hrwsi.indexation_json (product_fk_id);
CREATE INDEX IF NOT EXISTS indexation_json_file_type_idx
    ON hrwsi.indexation_json (indexation_file_type_id);
CREATE INDEX IF NOT EXISTS indexation_workflow_product_idx
    ON hrwsi.indexation_workflow (product_fk_id);
CREATE INDEX IF NOT EXISTS indexation_workflow_failure_type_idx
    ON hrwsi.indexation_workflow (indexation_failure_type_id);

-- Wake-up channels. Payloads are tiny JSON objects (a count and an id range), never rows: a
-- NOTIFY payload over 8000 bytes would abort the INSERT.
CREATE OR REPLACE FUNCTION hrwsi.notify_processing_task_insertion_function() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('processing_task_insertion', json_build_object(
        'count', count(*), 'min_id', min(id), 'max_id', max(id))::text)
    FROM new_table HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER notify_processing_task_insertion_trigger
    AFTER INSERT ON hrwsi.processing_tasks
    REFERENCING NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.notify_processing_task_insertion_function();

CREATE OR REPLACE FUNCTION hrwsi.notify_product_insertion_function() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('product_insertion', json_build_object(
        'count', count(*), 'min_id', min(id), 'max_id', max(id))::text)
    FROM new_table HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER notify_product_insertion_trigger
    AFTER INSERT ON hrwsi.products
    REFERENCING NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.notify_product_insertion_function();
