-- The operators' console (issue 12): what operators did, paused conditions, cancelled tasks,
-- service liveness, the one definition of a task's state, and the indexes its pages need.

-- Every operator action (web console or terminal): who, when, what, on what.
CREATE TABLE IF NOT EXISTS hrwsi.operator_action (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS operator_action_at_idx ON hrwsi.operator_action (at DESC);

-- A paused processing condition: nothing new is planned or launched for it; running work
-- finishes. A row exists while the condition is paused.
CREATE TABLE IF NOT EXISTS hrwsi.condition_pause (
    processing_condition_name text PRIMARY KEY
        REFERENCES hrwsi.processing_condition (name) ON DELETE CASCADE,
    paused_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    paused_by text NOT NULL,
    reason text
);

-- A cancelled task (has_ended = true and a row here). Minimal stand-in for
-- hrwsi.task_state.cancelled_at (issue 14 creates task_state; the two are reconciled at merge).
CREATE TABLE IF NOT EXISTS hrwsi.task_cancel (
    processing_task_id bigint PRIMARY KEY
        REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    cancelled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    cancelled_by text NOT NULL,
    reason text
);

-- One row per `hrwsi run` process (issue 16 creates and writes it on branch cli-truth: the
-- same columns, so either migration may run first).
CREATE TABLE IF NOT EXISTS hrwsi.service_heartbeat (
    process_id text PRIMARY KEY,
    host text,
    pid integer,
    services text[],
    started_at timestamptz,
    last_seen timestamptz,
    version text
);

-- A task reopened by hand (hrwsi retry) is no longer cancelled.
CREATE OR REPLACE FUNCTION hrwsi.task_cancel_clear_on_reopen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hrwsi.task_cancel WHERE processing_task_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER task_cancel_clear_on_reopen_trigger
    AFTER UPDATE OF has_ended ON hrwsi.processing_tasks
    FOR EACH ROW
    WHEN (NEW.has_ended IS NOT TRUE AND OLD.has_ended IS TRUE)
    EXECUTE FUNCTION hrwsi.task_cancel_clear_on_reopen();

-- The backlog trigger of 0022, unchanged but for one condition: a cancelled task does not
-- make its input a re-planning candidate (it is never re-planned automatically).
CREATE OR REPLACE FUNCTION hrwsi.orchestrator_backlog_ended_task() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = NEW.id AND w.processing_status_id = 2
    ) AND NOT EXISTS (
        SELECT 1 FROM hrwsi.task_cancel AS c WHERE c.processing_task_id = NEW.id
    ) THEN
        INSERT INTO hrwsi.orchestrator_backlog (input_id)
        VALUES (NEW.input_fk_id)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

-- The state of a task, the one definition the console and its terminal commands use:
-- processed | cancelled | failed | pending | waiting_retry | running.
CREATE OR REPLACE FUNCTION hrwsi.task_state_of(task_id bigint, has_ended boolean)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN EXISTS (
            SELECT 1 FROM hrwsi.nomad_job_dispatch AS d
            JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
            WHERE d.processing_task_fk_id = task_id AND w.processing_status_id = 2
        ) THEN 'processed'
        WHEN has_ended IS TRUE AND EXISTS (
            SELECT 1 FROM hrwsi.task_cancel AS c WHERE c.processing_task_id = task_id
        ) THEN 'cancelled'
        WHEN has_ended IS TRUE THEN 'failed'
        WHEN last.id IS NULL THEN 'pending'
        WHEN EXISTS (
            SELECT 1 FROM hrwsi.processing_status_workflow AS w
            WHERE w.nomad_job_dispatch_fk_id = last.id AND w.processing_status_id IN (3, 4)
        ) THEN 'waiting_retry'
        ELSE 'running'
    END
    FROM (SELECT (
        SELECT d.id FROM hrwsi.nomad_job_dispatch AS d
        WHERE d.processing_task_fk_id = task_id ORDER BY d.id DESC LIMIT 1
    ) AS id) AS last
$$;

-- Console pages: inputs by condition / tile newest first (keyset on id), products by type
-- and input, recent tasks.
CREATE INDEX IF NOT EXISTS input_condition_id_idx ON hrwsi.input (processing_condition_name, id);
CREATE INDEX IF NOT EXISTS input_tile_id_idx ON hrwsi.input (tile, id);
CREATE INDEX IF NOT EXISTS products_type_id_idx ON hrwsi.products (product_type_id, id);
