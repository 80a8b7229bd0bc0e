-- Operator retries (`hrwsi retry TASK_ID`): a terminally failed task gets another attempt.
--
-- processing_tasks.extra_attempts counts the attempts an operator granted on top of the retry
-- policy; the launcher adds it to every attempt limit it applies to the task. Each retry is
-- recorded in task_retry (who asked, when, what the task looked like).

ALTER TABLE hrwsi.processing_tasks
    ADD COLUMN IF NOT EXISTS extra_attempts integer NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS hrwsi.task_retry (
    id bigserial PRIMARY KEY,
    processing_task_fk_id bigint NOT NULL
        REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    requested_by text,
    reason text,
    dispatches_before integer NOT NULL,
    extra_attempts_after integer NOT NULL
);

CREATE INDEX IF NOT EXISTS task_retry_task_idx ON hrwsi.task_retry (processing_task_fk_id);
