-- Reprocessing campaigns (issue 13): an order to re-make a condition's products over a span
-- of measurement days and tiles, with its own state machine (hrwsi.domain.campaign) and a log
-- of every transition. Our own tables: no v1 table changes.
--
-- campaign.priority NULL means "the condition's reprocessing priority" ([priority] config).
-- The count columns are snapshots kept by whoever changes them (inputs_in_scope at create;
-- tasks_* once release creates tasks); `hrwsi campaign show` recomputes progress live.

CREATE TABLE IF NOT EXISTS hrwsi.campaign (
    id bigserial PRIMARY KEY,
    condition text NOT NULL REFERENCES hrwsi.processing_condition (name),
    from_day date NOT NULL,
    to_day date NOT NULL,
    tiles text[] NOT NULL DEFAULT '{}',
    priority integer CHECK (priority BETWEEN 0 AND 1000),
    state text NOT NULL DEFAULT 'created'
        CHECK (state IN ('created', 'released', 'suspended', 'cancelled', 'done')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by text,
    released_at timestamptz,
    suspended_at timestamptz,
    cancelled_at timestamptz,
    done_at timestamptz,
    inputs_in_scope integer NOT NULL DEFAULT 0,
    tasks_created integer NOT NULL DEFAULT 0,
    tasks_done integer NOT NULL DEFAULT 0,
    tasks_failed integer NOT NULL DEFAULT 0,
    CONSTRAINT campaign_days_in_order CHECK (from_day <= to_day)
);

CREATE INDEX IF NOT EXISTS campaign_condition_idx ON hrwsi.campaign (condition);
CREATE INDEX IF NOT EXISTS campaign_open_idx ON hrwsi.campaign (state)
    WHERE state IN ('created', 'released', 'suspended');

-- One row per transition, written in the transaction that changes campaign.state
-- (from_state NULL: the creation).
CREATE TABLE IF NOT EXISTS hrwsi.campaign_transition (
    id bigserial PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES hrwsi.campaign (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text,
    action text NOT NULL,
    from_state text,
    to_state text NOT NULL,
    reason text
);

CREATE INDEX IF NOT EXISTS campaign_transition_campaign_idx
    ON hrwsi.campaign_transition (campaign_id, id);
