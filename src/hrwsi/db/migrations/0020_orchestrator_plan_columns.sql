-- Orchestrator extensions: the planned times of VMs and tasks, the fixed worker pool, and a
-- guard that an input never has two live tasks at once.
--
-- Planned times are whole minutes from the planning pass that wrote the row (the task's
-- creation_date / the VM's created_at), as the planner computed them.

ALTER TABLE hrwsi.virtual_machine
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN IF NOT EXISTS planned_start_min integer,
    ADD COLUMN IF NOT EXISTS planned_stop_min integer,
    ADD COLUMN IF NOT EXISTS pooled boolean NOT NULL DEFAULT false;

-- A worker of the configured pool is one row, found again by its name on every pass.
CREATE UNIQUE INDEX IF NOT EXISTS virtual_machine_pooled_name_key
    ON hrwsi.virtual_machine (name) WHERE pooled;

ALTER TABLE hrwsi.processing_tasks
    ADD COLUMN IF NOT EXISTS planned_start_min integer,
    ADD COLUMN IF NOT EXISTS planned_end_min integer;

-- VMs still busy (some task not ended): what the orchestrator counts against the quotas.
CREATE INDEX IF NOT EXISTS processing_tasks_live_vm_idx
    ON hrwsi.processing_tasks (virtual_machine_id) WHERE has_ended IS NOT TRUE;

-- At most one live (not ended) task per input: two planning passes can never both give an
-- input a task, whatever happens to the advisory lock. An upgraded v1 database that already
-- holds an input with two live tasks keeps its data and only gets a notice (the lock still
-- guards the orchestrator there).
DO $$
BEGIN
    IF to_regclass('hrwsi.processing_tasks_one_live_task_per_input_key') IS NULL THEN
        IF EXISTS (
            SELECT 1 FROM hrwsi.processing_tasks
            WHERE has_ended IS NOT TRUE AND input_fk_id IS NOT NULL
            GROUP BY input_fk_id HAVING count(*) > 1
        ) THEN
            RAISE NOTICE 'some inputs have several live processing tasks; '
                'the one-live-task-per-input index is not created';
        ELSE
            CREATE UNIQUE INDEX processing_tasks_one_live_task_per_input_key
                ON hrwsi.processing_tasks (input_fk_id) WHERE has_ended IS NOT TRUE;
        END IF;
    END IF;
END
$$;
