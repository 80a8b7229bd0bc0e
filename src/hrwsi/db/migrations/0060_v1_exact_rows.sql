-- v1 tables keep exactly their v1 columns, in v1 order (issue 14): a v1 function returning
-- `setof processing_tasks` or `setof input` returns v1's row type, and a v1 tool that reads
-- rows by position reads what it expects. Our per-row facts move to tables of our own, keyed
-- on the v1 ids and written in the same statement as the v1 row:
--
--   input_meta   an input's catalogue identity, its source product, when hrwsi stored it
--   task_state   a task's plan (minutes), retry bookkeeping, operator cancellation
--   vm_plan      a VM's plan (minutes) and, for a worker of the fixed pool, its pool name
--
-- A v1 row without its side row (written by a v1 tool, an operator, a test) reads as "no
-- fact": no catalogue id, no plan, no operator extra attempts, no retry pending.
--
-- The event times 0040 added (created_at on nomad_job_dispatch, products and
-- processing_status_workflow) go: the writers now set the v1 columns (dispatch_date,
-- creation_date, date) to clock_timestamp() AT TIME ZONE 'UTC', the same instant at the
-- same precision. Rows written before kept the v1 value their writer set (the start of the
-- same transaction, milliseconds earlier); those v1 rows stay as they are.
--
-- Idempotent: the tables are created if missing, the data is moved only while the old
-- columns exist, and the columns are dropped if they exist. On a fresh install and on an
-- upgrade (v1 or hrwsi) 0003-0050 ran just before, so every old column is there the first time.

CREATE TABLE IF NOT EXISTS hrwsi.input_meta (
    input_id bigint PRIMARY KEY REFERENCES hrwsi.input (id) ON DELETE CASCADE,
    catalogue_id text,
    product_name text,
    publication_date timestamptz,
    source_product_id bigint,
    inserted_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE hrwsi.input_meta IS
    'Per input: catalogue Id, product name and PublicationDate (harvested inputs), source '
    'product (chained inputs), when hrwsi stored it. No row: an input written by someone else.';

CREATE TABLE IF NOT EXISTS hrwsi.task_state (
    processing_task_id bigint PRIMARY KEY
        REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    created_at timestamptz DEFAULT clock_timestamp(),
    planned_start_min integer,
    planned_end_min integer,
    extra_attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    cancelled_at timestamptz
);

COMMENT ON TABLE hrwsi.task_state IS
    'Per task: the planned minutes (from created_at), attempts an operator granted (hrwsi '
    'retry), when a failed attempt may be retried, when an operator cancelled it. No row: no plan, '
    'no extra attempt, no retry waiting.';

-- The launcher's next wake-up (launcher_next_retry) and the retry-due check of the claim.
CREATE INDEX IF NOT EXISTS task_state_next_attempt_idx
    ON hrwsi.task_state (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS hrwsi.vm_plan (
    virtual_machine_id uuid PRIMARY KEY REFERENCES hrwsi.virtual_machine (id) ON DELETE CASCADE,
    created_at timestamptz DEFAULT clock_timestamp(),
    planned_start_min integer,
    planned_stop_min integer,
    pooled boolean NOT NULL DEFAULT false,
    pooled_name text UNIQUE,
    CHECK (pooled = (pooled_name IS NOT NULL))
);

COMMENT ON TABLE hrwsi.vm_plan IS
    'Per VM: the planned minutes (from created_at); a worker of the fixed pool is found again '
    'by its pooled_name (its virtual_machine.name). No row: an elastic VM without a plan.';

-- Chained inputs by source product (catalogue inputs have none).
CREATE INDEX IF NOT EXISTS input_meta_source_product_idx
    ON hrwsi.input_meta (source_product_id) WHERE source_product_id IS NOT NULL;

-- Move the facts of an existing database, then drop the columns. Static SQL in a branch that
-- does not run is never planned, so the DO block also runs where the columns are gone.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'hrwsi' AND table_name = 'input' AND column_name = 'inserted_at'
    ) THEN
        INSERT INTO hrwsi.input_meta
            (input_id, catalogue_id, product_name, publication_date, source_product_id,
             inserted_at)
        SELECT id, catalogue_id, product_name, publication_date, source_product_id, inserted_at
        FROM hrwsi.input
        ON CONFLICT (input_id) DO NOTHING;
    END IF;

    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'hrwsi' AND table_name = 'processing_tasks'
          AND column_name = 'next_attempt_at'
    ) THEN
        INSERT INTO hrwsi.task_state
            (processing_task_id, created_at, planned_start_min, planned_end_min, extra_attempts,
             next_attempt_at)
        SELECT id, created_at, planned_start_min, planned_end_min, extra_attempts,
               next_attempt_at
        FROM hrwsi.processing_tasks
        ON CONFLICT (processing_task_id) DO NOTHING;
    END IF;

    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'hrwsi' AND table_name = 'virtual_machine'
          AND column_name = 'pooled'
    ) THEN
        INSERT INTO hrwsi.vm_plan
            (virtual_machine_id, created_at, planned_start_min, planned_stop_min, pooled,
             pooled_name)
        SELECT id, created_at, planned_start_min, planned_stop_min, pooled,
               CASE WHEN pooled THEN name END
        FROM hrwsi.virtual_machine
        ON CONFLICT (virtual_machine_id) DO NOTHING;
    END IF;
END
$$;

-- The indexes on the old columns go with them; named here so that nothing is left implicit.
DROP INDEX IF EXISTS hrwsi.virtual_machine_pooled_name_key;
DROP INDEX IF EXISTS hrwsi.input_source_product_idx;

ALTER TABLE hrwsi.input
    DROP COLUMN IF EXISTS catalogue_id,
    DROP COLUMN IF EXISTS product_name,
    DROP COLUMN IF EXISTS publication_date,
    DROP COLUMN IF EXISTS source_product_id,
    DROP COLUMN IF EXISTS inserted_at;

ALTER TABLE hrwsi.processing_tasks
    DROP COLUMN IF EXISTS created_at,
    DROP COLUMN IF EXISTS planned_start_min,
    DROP COLUMN IF EXISTS planned_end_min,
    DROP COLUMN IF EXISTS extra_attempts,
    DROP COLUMN IF EXISTS next_attempt_at;

ALTER TABLE hrwsi.virtual_machine
    DROP COLUMN IF EXISTS created_at,
    DROP COLUMN IF EXISTS planned_start_min,
    DROP COLUMN IF EXISTS planned_stop_min,
    DROP COLUMN IF EXISTS pooled;

ALTER TABLE hrwsi.nomad_job_dispatch DROP COLUMN IF EXISTS created_at;
ALTER TABLE hrwsi.products DROP COLUMN IF EXISTS created_at;
ALTER TABLE hrwsi.processing_status_workflow DROP COLUMN IF EXISTS created_at;
