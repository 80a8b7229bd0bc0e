-- Multi-input tasks and declarative triggering rules (issue 10). Our own tables, keyed on the
-- v1 ids: the v1 tables get no new column, processing_tasks.input_fk_id stays each task's
-- PRIMARY input, so v1 functions and single-input chains behave exactly as before.
--
-- The one-live-task-per-input guard (processing_tasks_one_live_task_per_input_key, 0020) is
-- KEPT unchanged. Tasks are identified by their primary input in the v1 model itself
-- (preceding_input_id chains a VM's tasks by input), so two live tasks sharing a primary would
-- make the chain ambiguous, not only trip the index. The rules step therefore picks, for each
-- proposal, the first of its inputs (in the rule's order: L1C, SIG0 anchor, newest composite
-- product, ...) that is not the primary of a live task nor of another proposal of the same
-- pass; when every input of a proposal is taken (a WICS1 paired with several WICS2 at once,
-- GFSC composites of consecutive days with a single product), the proposal waits for the next
-- pass, when that task has ended. A rule-made task is thus still unique per live primary, and
-- the guard keeps protecting single-input chains from two planning passes.

-- The task <-> inputs link, written in the transaction that writes the task. The primary input
-- has a row too (with its rule's primary role).
CREATE TABLE IF NOT EXISTS hrwsi.task_input (
    processing_task_id bigint NOT NULL REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    input_id bigint NOT NULL REFERENCES hrwsi.input (id) ON DELETE CASCADE,
    role text NOT NULL,
    PRIMARY KEY (processing_task_id, input_id)
);

CREATE INDEX IF NOT EXISTS task_input_input_idx ON hrwsi.task_input (input_id);

COMMENT ON TABLE hrwsi.task_input IS
    'Per task made by a triggering rule: each input with its role (l1c, previous_l2a, fsc...). '
    'processing_tasks.input_fk_id is the primary one. No rows: a single-input task.';

-- One row per rule instance: its deterministic key (rule, tile, day, sorted input ids) is the
-- primary key, so re-evaluating a rule (crash, replica, sweep) never creates a second task.
CREATE TABLE IF NOT EXISTS hrwsi.rule_instance (
    key text PRIMARY KEY,
    rule text NOT NULL,
    tile text NOT NULL,
    day date NOT NULL,
    processing_task_id bigint REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX IF NOT EXISTS rule_instance_rule_tile_day_idx
    ON hrwsi.rule_instance (rule, tile, day);
CREATE INDEX IF NOT EXISTS rule_instance_task_idx ON hrwsi.rule_instance (processing_task_id);

-- composite_with_gate: the last day composited per rule (advances one day at a time, holds at
-- the first day whose gate is shut), written in the transaction of that day's proposals.
CREATE TABLE IF NOT EXISTS hrwsi.rule_watermark (
    rule text PRIMARY KEY,
    day date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Inputs a rule looked at and will never use (stale, off track, late partner): kept out of
-- the orchestrator's sweep and told by `hrwsi explain`.
CREATE TABLE IF NOT EXISTS hrwsi.rule_skip (
    input_id bigint PRIMARY KEY REFERENCES hrwsi.input (id) ON DELETE CASCADE,
    rule text NOT NULL,
    reason text NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Per-task parameters that reach the routine (HRWSI_META_<KEY>), e.g. {"mode": "L2INIT"}.
CREATE TABLE IF NOT EXISTS hrwsi.task_params (
    processing_task_id bigint PRIMARY KEY
        REFERENCES hrwsi.processing_tasks (id) ON DELETE CASCADE,
    params jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- The rules' bounded contexts: the inputs of a condition on one (tile, day).
CREATE INDEX IF NOT EXISTS input_condition_tile_day_idx
    ON hrwsi.input (processing_condition_name, tile, measurement_day);
