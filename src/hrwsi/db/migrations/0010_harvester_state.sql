-- Harvester state: the near-real-time watermark of each harvest query and the cursor of
-- each archive run, so a pass resumes where the previous one (or a killed run) stopped.

CREATE TABLE IF NOT EXISTS hrwsi.harvest_watermark (
    query_name text PRIMARY KEY,
    publication_date timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE hrwsi.harvest_watermark IS
    'Latest catalogue PublicationDate stored per harvest query (near-real-time mode).';

CREATE TABLE IF NOT EXISTS hrwsi.harvest_archive_cursor (
    query_name text NOT NULL,
    from_day date NOT NULL,
    to_day date NOT NULL,
    day date NOT NULL,
    resume_from timestamptz,
    pages bigint NOT NULL DEFAULT 0,
    records bigint NOT NULL DEFAULT 0,
    new_inputs bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (query_name, from_day, to_day),
    CHECK (from_day <= to_day),
    CHECK (day BETWEEN from_day AND to_day + 1)
);

COMMENT ON TABLE hrwsi.harvest_archive_cursor IS
    'Progress of an archive harvest (hrwsi harvest --from --to): the day being walked and the '
    'last PublicationDate stored in it. Deleted when the run completes.';
