-- Cheaper input inserts (the harvester's hot path), measured with bench/harvest.py:
-- * the orchestrator backlog is a cache of the tables, not the truth: its foreign key to
--   input cost a key check per harvested row; the orchestrator drops ids whose input is gone;
-- * source_product_id is NULL for every catalogue input: index only the chained ones.
ALTER TABLE hrwsi.orchestrator_backlog
    DROP CONSTRAINT IF EXISTS orchestrator_backlog_input_id_fkey;

DROP INDEX IF EXISTS hrwsi.input_source_product_idx;
CREATE INDEX IF NOT EXISTS input_source_product_idx
    ON hrwsi.input (source_product_id) WHERE source_product_id IS NOT NULL;
