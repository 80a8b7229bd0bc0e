-- The HR-WSI v1 data model (see hrwsi-v1-data-model.md), written so that it is a no-op on an
-- existing v1 database: every object is created only if missing and every seeded row is
-- inserted only if missing. The v1 SQL functions are (re)defined set-based in 0002.
-- Where the model page is silent, the NOT NULLs follow the v1 DDL (eea/clms-hrwsi-system):
-- processing_tasks.input_fk_id (a bigserial there), the names and codes of the lookup tables;
-- 0003 brings an upgraded v1 database to exactly this shape.

CREATE SCHEMA IF NOT EXISTS hrwsi;

-- Cold tables ---------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS hrwsi.processing_routine (
    name text PRIMARY KEY,
    cpu smallint,
    ram smallint,
    storage_space smallint,
    duration smallint,
    docker_image text,
    input_type text,
    product_data_type text,
    product_type_code text
);

CREATE TABLE IF NOT EXISTS hrwsi.processing_condition (
    name text PRIMARY KEY,
    processing_routine_name text NOT NULL REFERENCES hrwsi.processing_routine (name),
    description text
);

CREATE TABLE IF NOT EXISTS hrwsi.processing_status (
    id smallint PRIMARY KEY,
    code bigint UNIQUE NOT NULL,
    name text UNIQUE NOT NULL,
    description text
);

CREATE TABLE IF NOT EXISTS hrwsi.product_type (
    id bigserial UNIQUE,
    code text UNIQUE NOT NULL,
    name text UNIQUE NOT NULL,
    data_type text,
    description text
);

CREATE TABLE IF NOT EXISTS hrwsi.indexation_failure_type (
    id smallint PRIMARY KEY,
    code bigint UNIQUE NOT NULL,
    name text UNIQUE NOT NULL,
    description text
);

CREATE TABLE IF NOT EXISTS hrwsi.indexation_file_type (
    id smallint PRIMARY KEY,
    name text UNIQUE NOT NULL,
    description text
);

CREATE TABLE IF NOT EXISTS hrwsi.log_levels (
    id smallint UNIQUE NOT NULL,
    name text UNIQUE NOT NULL
);

-- Core tables ---------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS hrwsi.input (
    id bigserial UNIQUE,
    processing_condition_name text NOT NULL REFERENCES hrwsi.processing_condition (name),
    date timestamp NOT NULL,
    tile text NOT NULL,
    measurement_day bigint NOT NULL,
    input_path text,
    mission text
);

CREATE TABLE IF NOT EXISTS hrwsi.virtual_machine (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    flavour text NOT NULL
);

CREATE TABLE IF NOT EXISTS hrwsi.processing_tasks (
    id bigserial UNIQUE,
    input_fk_id bigint NOT NULL REFERENCES hrwsi.input (id) ON DELETE CASCADE,
    virtual_machine_id uuid NOT NULL REFERENCES hrwsi.virtual_machine (id),
    creation_date timestamp NOT NULL,
    preceding_input_id bigint,
    nomad_job_id uuid,
    has_ended boolean,
    intermediate_files_path text
);

CREATE TABLE IF NOT EXISTS hrwsi.nomad_job_dispatch (
    id bigserial UNIQUE,
    processing_task_fk_id bigint NOT NULL REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    nomad_job_dispatch text NOT NULL,
    dispatch_date timestamp NOT NULL,
    log_path text
);

CREATE TABLE IF NOT EXISTS hrwsi.processing_status_workflow (
    id bigserial UNIQUE,
    nomad_job_dispatch_fk_id bigint NOT NULL
        REFERENCES hrwsi.nomad_job_dispatch (id) ON DELETE CASCADE,
    processing_status_id smallint NOT NULL REFERENCES hrwsi.processing_status (id),
    date timestamp NOT NULL,
    message text
);

CREATE TABLE IF NOT EXISTS hrwsi.products (
    id bigserial UNIQUE,
    input_fk_id bigint NOT NULL REFERENCES hrwsi.input (id) ON DELETE CASCADE,
    product_path text UNIQUE NOT NULL,
    creation_date timestamp NOT NULL,
    catalogued_date timestamp NOT NULL,
    kpi_file_path text,
    product_type_id smallint NOT NULL REFERENCES hrwsi.product_type (id)
);

CREATE TABLE IF NOT EXISTS hrwsi.indexation_json (
    id bigserial UNIQUE,
    product_fk_id bigint NOT NULL REFERENCES hrwsi.products (id) ON DELETE CASCADE,
    indexation_file_type_id smallint REFERENCES hrwsi.indexation_file_type (id),
    path text UNIQUE NOT NULL
);

CREATE TABLE IF NOT EXISTS hrwsi.indexation_workflow (
    id bigserial UNIQUE,
    product_fk_id bigint NOT NULL REFERENCES hrwsi.products (id) ON DELETE CASCADE,
    publication_date timestamp NOT NULL,
    indexation_date timestamp,
    failure_date timestamp,
    indexation_failure_type_id smallint REFERENCES hrwsi.indexation_failure_type (id)
);

-- Composite types -----------------------------------------------------------------------

DO $$
BEGIN
    IF to_regtype('hrwsi.nomad_job_dispatch_info') IS NULL THEN
        CREATE TYPE hrwsi.nomad_job_dispatch_info AS (
            nomad_job_id uuid,
            nomad_job_dispatch text,
            nomad_job_dispatch_creation_date timestamp,
            nomad_job_dispatch_log_file_path text
        );
    END IF;
    IF to_regtype('hrwsi.processing_status_history') IS NULL THEN
        CREATE TYPE hrwsi.processing_status_history AS (
            id bigint,
            processing_status_date timestamp,
            processing_status_code bigint,
            processing_status_name text,
            processing_status_message text
        );
    END IF;
END
$$;

-- Seeded rows ---------------------------------------------------------------------------

INSERT INTO hrwsi.processing_routine
    (name, cpu, ram, storage_space, duration, docker_image, input_type, product_data_type,
     product_type_code)
VALUES
    ('MAJA', 5, 5, 5, 5, NULL, 'MSIL1C', 'L2A', 'S2_MAJA_L2A'),
    ('FSC', 2, 2, 2, 2, NULL, 'L2A', 'L2B', 'S2_FSC_L2B')
ON CONFLICT DO NOTHING;

INSERT INTO hrwsi.processing_condition (name, processing_routine_name, description)
VALUES
    ('MAJA_PC', 'MAJA', 'L1C measured in the last 30 days, published in the last 7 days'),
    ('FSC_PC', 'FSC', 'L2A created in the last 7 days')
ON CONFLICT DO NOTHING;

INSERT INTO hrwsi.processing_status (id, code, name, description)
VALUES
    (1, 0, 'started', 'the processing has started'),
    (2, 1, 'processed', 'the processing ended successfully'),
    (3, 110, 'internal_error', 'the routine failed'),
    (4, 210, 'external_error', 'the platform failed to run the routine')
ON CONFLICT DO NOTHING;

INSERT INTO hrwsi.product_type (id, code, name, data_type, description)
VALUES
    (1, 'S2_MAJA_L2A', 'S2_MAJA_L2A', 'L2A', 'Sentinel-2 L2A made by MAJA'),
    (2, 'S2_FSC_L2B', 'S2_FSC_L2B', 'L2B', 'Fractional snow cover made by FSC')
ON CONFLICT DO NOTHING;
SELECT setval(pg_get_serial_sequence('hrwsi.product_type', 'id'),
              greatest((SELECT max(id) FROM hrwsi.product_type), 1));

INSERT INTO hrwsi.indexation_failure_type (id, code, name)
VALUES
    (1, 110, 'error_failed_publication'),
    (2, 120, 'error_publication_max_retry'),
    (3, 130, 'error_timeout_indexation')
ON CONFLICT DO NOTHING;

INSERT INTO hrwsi.indexation_file_type (id, name) VALUES (1, 'INSPIRE') ON CONFLICT DO NOTHING;

INSERT INTO hrwsi.log_levels (id, name)
VALUES (50, 'CRITICAL'), (40, 'ERROR'), (30, 'WARNING'), (20, 'INFO'), (10, 'DEBUG')
ON CONFLICT DO NOTHING;

-- Triggers and channels (v1) ------------------------------------------------------------

CREATE OR REPLACE FUNCTION hrwsi.notify_input_function() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One notification per processing condition of the batch (PostgreSQL folds identical
    -- notifications of one transaction); payload: the condition name.
    PERFORM pg_notify('input_insertion', c.processing_condition_name)
    FROM (SELECT DISTINCT processing_condition_name FROM new_table) AS c;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER notify_input_trigger
    AFTER INSERT ON hrwsi.input
    REFERENCING NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.notify_input_function();

CREATE OR REPLACE FUNCTION hrwsi.notify_processing_task_processed_function() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.processing_status_id = 2 THEN
        PERFORM pg_notify('processing_tasks_state_processed', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER notify_processing_task_processed_trigger
    AFTER INSERT ON hrwsi.processing_status_workflow
    FOR EACH ROW EXECUTE FUNCTION hrwsi.notify_processing_task_processed_function();
