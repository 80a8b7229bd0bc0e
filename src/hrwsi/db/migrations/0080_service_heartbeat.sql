-- One row per running `hrwsi run` process, refreshed every few seconds and deleted when it
-- stops gracefully: who is alive, as `hrwsi retry` (and the operator commands) tell it. A
-- row whose last_seen is older than a few intervals belongs to a process that died without
-- stopping (killed, host lost). Our own table: the v1 tables get no new column.

CREATE TABLE IF NOT EXISTS hrwsi.service_heartbeat (
    process_id text PRIMARY KEY,          -- host:pid:start-epoch
    host text NOT NULL,
    pid integer NOT NULL,
    services text[] NOT NULL,             -- harvester, orchestrator, launcher (hrwsi run --only)
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL DEFAULT clock_timestamp(),
    version text NOT NULL
);

COMMENT ON TABLE hrwsi.service_heartbeat IS
    'Running hrwsi processes: one row each, refreshed every few seconds, deleted on a graceful stop.';
