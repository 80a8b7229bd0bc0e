-- name: harvester_create_input_stage
-- The session's staging table of one batch (emptied at every commit); a no-op once it exists.
CREATE TEMP TABLE IF NOT EXISTS harvester_input_stage (
    date timestamp,
    tile text,
    measurement_day bigint,
    input_path text,
    mission text,
    catalogue_id text,
    product_name text,
    publication_date timestamptz
) ON COMMIT DELETE ROWS

-- name: harvester_copy_input_stage
-- Load one batch into the staging table (binary COPY: no per-row statement, no text parsing).
COPY harvester_input_stage (date, tile, measurement_day, input_path, mission, catalogue_id,
                            product_name, publication_date)
FROM STDIN (FORMAT BINARY)

-- name: harvester_store_inputs
-- Move the staged batch into the inputs of a condition (and their catalogue identity into input_meta) in one statement; returns how many were new.
WITH staged AS (
    DELETE FROM harvester_input_stage
    RETURNING date, tile, measurement_day, input_path, mission, catalogue_id, product_name,
              publication_date
), numbered AS (
    -- A batch holding a path twice stores its first record (as the INSERT below keeps it).
    SELECT s.*, row_number() OVER () AS n FROM staged AS s
), new_rows AS (
    INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day, input_path,
                             mission)
    SELECT %(condition)s, b.date, b.tile, b.measurement_day, b.input_path, b.mission
    FROM numbered AS b
    ORDER BY b.n
    ON CONFLICT (processing_condition_name, input_path) DO NOTHING
    RETURNING id, input_path
), new_meta AS (
    INSERT INTO hrwsi.input_meta (input_id, catalogue_id, product_name, publication_date)
    SELECT DISTINCT ON (r.id) r.id, b.catalogue_id, b.product_name, b.publication_date
    FROM new_rows AS r
    JOIN numbered AS b ON b.input_path = r.input_path
    ORDER BY r.id, b.n
)
SELECT count(*) FROM new_rows

-- name: harvester_set_lock_timeout
-- Bound this transaction's lock waits (a page waiting on another harvester's uncommitted rows).
SELECT set_config('lock_timeout', %(timeout)s, true)

-- name: harvester_try_query_lock
-- Take the near-real-time lock of a harvest query for this session; false: another harvester has it.
SELECT pg_try_advisory_lock(hashtext('hrwsi.harvest'), hashtext(%(query)s))

-- name: harvester_release_query_lock
-- Release the near-real-time lock of a harvest query taken by this session.
SELECT pg_advisory_unlock(hashtext('hrwsi.harvest'), hashtext(%(query)s))

-- name: harvester_get_watermark
-- The latest PublicationDate stored by a near-real-time harvest query (no row: never run).
SELECT publication_date FROM hrwsi.harvest_watermark WHERE query_name = %(query)s

-- name: harvester_advance_watermark
-- Move a query's watermark forward (never back) to the latest PublicationDate stored.
INSERT INTO hrwsi.harvest_watermark AS w (query_name, publication_date)
VALUES (%(query)s, %(publication_date)s)
ON CONFLICT (query_name) DO UPDATE
    SET publication_date = GREATEST(w.publication_date, EXCLUDED.publication_date),
        updated_at = clock_timestamp()

-- name: harvester_delete_watermark
-- Forget a query's watermark: its next near-real-time pass starts at the max-days limit.
DELETE FROM hrwsi.harvest_watermark WHERE query_name = %(query)s

-- name: harvester_get_archive_cursor
-- Where an unfinished archive run of this query and day range stopped (no row: start afresh).
SELECT day, resume_from, pages, records, new_inputs
FROM hrwsi.harvest_archive_cursor
WHERE query_name = %(query)s AND from_day = %(from_day)s AND to_day = %(to_day)s

-- name: harvester_save_archive_cursor
-- Record the progress of an archive run (called in the transaction that stores its inputs).
INSERT INTO hrwsi.harvest_archive_cursor AS c
    (query_name, from_day, to_day, day, resume_from, pages, records, new_inputs)
VALUES (%(query)s, %(from_day)s, %(to_day)s, %(day)s, %(resume_from)s, %(pages)s, %(records)s,
        %(new_inputs)s)
ON CONFLICT (query_name, from_day, to_day) DO UPDATE
    SET day = EXCLUDED.day, resume_from = EXCLUDED.resume_from, pages = EXCLUDED.pages,
        records = EXCLUDED.records, new_inputs = EXCLUDED.new_inputs,
        updated_at = clock_timestamp()

-- name: harvester_delete_archive_cursor
-- Forget the cursor of a completed archive run.
DELETE FROM hrwsi.harvest_archive_cursor
WHERE query_name = %(query)s AND from_day = %(from_day)s AND to_day = %(to_day)s

-- name: harvester_products_to_inputs
-- The full sweep (safety net, O(all products)): make every product a routine takes an input of each condition using it (with its input_meta row); returns how many were new.
WITH candidate AS MATERIALIZED (
    SELECT pc.name AS condition, source.date, source.tile, source.measurement_day,
           p.product_path, source.mission, p.id AS product_id
    FROM hrwsi.products AS p
    JOIN hrwsi.product_type AS pt ON pt.id = p.product_type_id
    JOIN hrwsi.processing_routine AS r ON r.input_type = pt.data_type
    JOIN hrwsi.processing_condition AS pc ON pc.processing_routine_name = r.name
    JOIN hrwsi.input AS source ON source.id = p.input_fk_id
    WHERE NOT EXISTS (
        SELECT 1 FROM hrwsi.input AS existing
        WHERE existing.processing_condition_name = pc.name
          AND existing.input_path = p.product_path
    )
), new_rows AS (
    INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day, input_path,
                             mission)
    SELECT c.condition, c.date, c.tile, c.measurement_day, c.product_path, c.mission
    FROM candidate AS c
    ORDER BY c.product_id
    ON CONFLICT (processing_condition_name, input_path) DO NOTHING
    RETURNING id, processing_condition_name, input_path
), new_meta AS (
    INSERT INTO hrwsi.input_meta (input_id, product_name, source_product_id)
    SELECT n.id, substring(n.input_path FROM '[^/]+$'), c.product_id
    FROM new_rows AS n
    JOIN candidate AS c ON c.condition = n.processing_condition_name
                       AND c.product_path = n.input_path
)
SELECT count(*) FROM new_rows

-- name: harvester_claim_queued_products
-- Take up to %(limit)s ids off the products-to-inputs queue (rows another pass holds are skipped); the caller's transaction makes them inputs.
DELETE FROM hrwsi.harvester_product_queue
WHERE product_id IN (
    SELECT q.product_id FROM hrwsi.harvester_product_queue AS q
    ORDER BY q.product_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING product_id

-- name: harvester_queued_products_to_inputs
-- Make the given products (claimed off the queue) inputs of each condition whose routine takes them (with their input_meta rows); returns how many were new.
WITH candidate AS MATERIALIZED (
    SELECT pc.name AS condition, source.date, source.tile, source.measurement_day,
           p.product_path, source.mission, p.id AS product_id
    FROM hrwsi.products AS p
    JOIN hrwsi.product_type AS pt ON pt.id = p.product_type_id
    JOIN hrwsi.processing_routine AS r ON r.input_type = pt.data_type
    JOIN hrwsi.processing_condition AS pc ON pc.processing_routine_name = r.name
    JOIN hrwsi.input AS source ON source.id = p.input_fk_id
    WHERE p.id = ANY(%(ids)s::bigint[])
), new_rows AS (
    INSERT INTO hrwsi.input (processing_condition_name, date, tile, measurement_day, input_path,
                             mission)
    SELECT c.condition, c.date, c.tile, c.measurement_day, c.product_path, c.mission
    FROM candidate AS c
    ORDER BY c.product_id
    ON CONFLICT (processing_condition_name, input_path) DO NOTHING
    RETURNING id, processing_condition_name, input_path
), new_meta AS (
    INSERT INTO hrwsi.input_meta (input_id, product_name, source_product_id)
    SELECT n.id, substring(n.input_path FROM '[^/]+$'), c.product_id
    FROM new_rows AS n
    JOIN candidate AS c ON c.condition = n.processing_condition_name
                       AND c.product_path = n.input_path
)
SELECT count(*) FROM new_rows

-- name: harvester_bench_fill_inputs
-- Benchmarks only: add %(count)s synthetic MAJA_PC inputs, with their input_meta rows, in one statement (generate_series).
WITH g AS MATERIALIZED (
    SELECT g, nextval(pg_get_serial_sequence('hrwsi.input', 'id')) AS id
    FROM generate_series(1, %(count)s::bigint) AS g
), new_rows AS (
    INSERT INTO hrwsi.input (id, processing_condition_name, date, tile, measurement_day,
                             input_path, mission)
    SELECT g.id, 'MAJA_PC', timestamp '2024-01-01' + g.g * interval '1 second', '31TCH',
           20240101, '/eodata/Sentinel-2/MSI/L1C/2024/01/01/BENCH_' || g.g || '.SAFE', 'S2'
    FROM g
)
INSERT INTO hrwsi.input_meta (input_id, catalogue_id, product_name)
SELECT g.id, md5(g.g::text), 'BENCH_' || g.g || '.SAFE'
FROM g

-- name: harvester_bench_input_paths
-- Benchmarks only: every stored input path (the list HR-WSI v1 compared candidates against).
SELECT input_path FROM hrwsi.input

-- name: harvester_bench_analyze
-- Benchmarks only: refresh the planner statistics of hrwsi.input and hrwsi.input_meta after a bulk fill.
ANALYZE hrwsi.input, hrwsi.input_meta
