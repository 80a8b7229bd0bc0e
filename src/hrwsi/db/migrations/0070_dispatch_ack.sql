-- Nomad (issue 15): which dispatches the executor acknowledged. A row exists iff the executor
-- accepted the submit of that attempt (Nomad answered the register, or the job already
-- existed). Written in its own transaction right after the submit returns; the dispatch row
-- itself is committed before the submit. After a restart, a dispatch the executor no longer
-- knows is submitted again only when it has no row here: an acknowledged one may have run
-- (Nomad garbage-collects finished jobs, 4 h by default), so it ends as an external error
-- ("lost track") and the retry policy decides, never a second run of the same attempt.
-- Its own table: the v1 table nomad_job_dispatch keeps exactly its v1 columns.

CREATE TABLE IF NOT EXISTS hrwsi.dispatch_ack (
    nomad_job_dispatch_id bigint PRIMARY KEY
        REFERENCES hrwsi.nomad_job_dispatch (id) ON DELETE CASCADE,
    acknowledged_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE hrwsi.dispatch_ack IS
    'Dispatches whose submit the executor acknowledged (only the others may be submitted again).';
