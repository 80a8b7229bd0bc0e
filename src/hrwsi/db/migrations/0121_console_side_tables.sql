-- The console on the v1-exact rows (issues 12 and 14 merged): one record of cancellation, and
-- the indexes the overview's recent-window counts read.
--
-- Cancellation was designed twice: 0060 gave hrwsi.task_state a cancelled_at column, 0120
-- created hrwsi.task_cancel (when, who, why). task_cancel is the one kept; nothing writes the
-- column, so it goes (a database where something did would lose only "when", kept in
-- task_cancel for every cancel the console made).
ALTER TABLE hrwsi.task_state DROP COLUMN IF EXISTS cancelled_at;

COMMENT ON TABLE hrwsi.task_state IS
    'Per task: the planned minutes (from created_at), attempts an operator granted (hrwsi '
    'retry), when a failed attempt may be retried. No row: no plan, no extra attempt, no retry '
    'waiting. A cancelled task has a row in hrwsi.task_cancel.';

-- The overview counts the events of the last hour and day (console_rates). The four times only
-- grow with the rows' physical order (each is clock_timestamp() when its row is written), so a
-- BRIN index answers "since t" by reading the newest page ranges, and costs the writers next to
-- nothing: no B-tree entry per harvested input (the harvester's insert is the hot path), the new
-- pages are summarised by vacuum.
CREATE INDEX IF NOT EXISTS input_meta_inserted_at_brin
    ON hrwsi.input_meta USING brin (inserted_at);
CREATE INDEX IF NOT EXISTS task_state_created_at_brin
    ON hrwsi.task_state USING brin (created_at);
CREATE INDEX IF NOT EXISTS nomad_job_dispatch_dispatch_date_brin
    ON hrwsi.nomad_job_dispatch USING brin (dispatch_date);
CREATE INDEX IF NOT EXISTS processing_status_workflow_date_brin
    ON hrwsi.processing_status_workflow USING brin (date);
