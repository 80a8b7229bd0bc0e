-- The orchestrator's backlog: the inputs that MAY need a task, so that a planning pass reads a
-- handful of rows instead of scanning every input and task ever written.
--
-- Filled by triggers (a new input; a task that ended without a processed status) and by the
-- orchestrator's periodic sweep (the full query over input and processing_tasks), which makes
-- the backlog a cache of the tables, never the truth: a pass re-checks every candidate and
-- drops those that no longer need a task; a planned input leaves the backlog in the
-- transaction that writes its task.

CREATE TABLE IF NOT EXISTS hrwsi.orchestrator_backlog (
    input_id bigint PRIMARY KEY REFERENCES hrwsi.input (id) ON DELETE CASCADE,
    queued_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE FUNCTION hrwsi.orchestrator_backlog_new_inputs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hrwsi.orchestrator_backlog (input_id)
    SELECT id FROM new_table
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER orchestrator_backlog_input_trigger
    AFTER INSERT ON hrwsi.input
    REFERENCING NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.orchestrator_backlog_new_inputs();

-- A task that ends without a processed status makes its input a re-planning candidate. A row
-- trigger: tasks end one by one, and a statement trigger would have to join the OLD and NEW
-- transition tables, which have no index.
CREATE OR REPLACE FUNCTION hrwsi.orchestrator_backlog_ended_task() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = NEW.id AND w.processing_status_id = 2
    ) THEN
        INSERT INTO hrwsi.orchestrator_backlog (input_id)
        VALUES (NEW.input_fk_id)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER orchestrator_backlog_task_ended_trigger
    AFTER UPDATE OF has_ended ON hrwsi.processing_tasks
    FOR EACH ROW
    WHEN (NEW.has_ended IS TRUE AND OLD.has_ended IS NOT TRUE AND NEW.input_fk_id IS NOT NULL)
    EXECUTE FUNCTION hrwsi.orchestrator_backlog_ended_task();

-- An existing database: every input without a task is a candidate from the start.
INSERT INTO hrwsi.orchestrator_backlog (input_id)
SELECT i.id FROM hrwsi.input AS i
WHERE NOT EXISTS (SELECT 1 FROM hrwsi.processing_tasks AS pt WHERE pt.input_fk_id = i.id)
ON CONFLICT DO NOTHING;
