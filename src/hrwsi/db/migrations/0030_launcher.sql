-- Launcher: retry bookkeeping on tasks, one dispatch row per attempt key, indexes for the
-- ready-task claim, and the processing_task_ended channel.

-- extra_attempts: attempts an operator granted (hrwsi retry), added to every attempt limit.
-- (0021 may have created it already; ADD COLUMN IF NOT EXISTS leaves that one as it is.)
-- next_attempt_at: when a task whose last attempt failed may be dispatched again (NULL: now).
ALTER TABLE hrwsi.processing_tasks
    ADD COLUMN IF NOT EXISTS extra_attempts smallint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;

-- The attempt key (task-<id>-attempt-<n>) is the dispatch's identity: inserting it twice is a
-- no-op, so two launchers that both saw a task ready dispatch it once. A v1 database whose
-- dispatch ids repeat keeps its data and only gets a notice.
DO $$
BEGIN
    IF to_regclass('hrwsi.nomad_job_dispatch_key') IS NULL THEN
        IF EXISTS (
            SELECT 1 FROM hrwsi.nomad_job_dispatch
            GROUP BY nomad_job_dispatch HAVING count(*) > 1
        ) THEN
            RAISE NOTICE 'nomad_job_dispatch holds repeated dispatch ids; '
                'the unique attempt key index is not created';
        ELSE
            CREATE UNIQUE INDEX nomad_job_dispatch_key
                ON hrwsi.nomad_job_dispatch (nomad_job_dispatch);
        END IF;
    END IF;
END
$$;

-- The latest dispatch of a task, and the terminal status of a dispatch, by index.
CREATE INDEX IF NOT EXISTS nomad_job_dispatch_task_latest_idx
    ON hrwsi.nomad_job_dispatch (processing_task_fk_id, id DESC);
CREATE INDEX IF NOT EXISTS processing_status_workflow_dispatch_status_idx
    ON hrwsi.processing_status_workflow (nomad_job_dispatch_fk_id, processing_status_id);
-- Tasks of an input (the chain rule looks up the tasks of the preceding input).
CREATE INDEX IF NOT EXISTS processing_tasks_input_ended_idx
    ON hrwsi.processing_tasks (input_fk_id, has_ended);

-- processing_task_ended: a task ended without being processed (failed for good), so the
-- orchestrator may re-plan its input. Payload: the task id.
CREATE OR REPLACE FUNCTION hrwsi.notify_processing_task_ended_function() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1
        FROM hrwsi.nomad_job_dispatch AS d
        JOIN hrwsi.processing_status_workflow AS w ON w.nomad_job_dispatch_fk_id = d.id
        WHERE d.processing_task_fk_id = NEW.id AND w.processing_status_id = 2
    ) THEN
        PERFORM pg_notify('processing_task_ended', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER notify_processing_task_ended_trigger
    AFTER UPDATE OF has_ended ON hrwsi.processing_tasks
    FOR EACH ROW
    WHEN (NEW.has_ended IS TRUE AND OLD.has_ended IS NOT TRUE)
    EXECUTE FUNCTION hrwsi.notify_processing_task_ended_function();
