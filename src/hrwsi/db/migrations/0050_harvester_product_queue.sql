-- The harvester's products-to-inputs queue: the products that MAY need chained inputs, so a
-- pass reads the products inserted since the last one instead of every product ever made.
--
-- Filled by a statement trigger on products, in the inserting transaction (so a queued id
-- is visible exactly when its product is); drained by the harvester with DELETE … RETURNING
-- in the transaction that inserts the inputs (a crash or a rollback puts the ids back). The
-- harvester's periodic full sweep (the anti-join over every product) stays the safety net:
-- a condition added later, or a queue row lost to a manual edit, is still caught. No
-- foreign key: a queued id whose product is gone is dropped by the pass.

CREATE TABLE IF NOT EXISTS hrwsi.harvester_product_queue (
    product_id bigint PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE hrwsi.harvester_product_queue IS
    'Products not yet turned into chained inputs by the harvester (a cache; the sweep is the truth).';

CREATE OR REPLACE FUNCTION hrwsi.harvester_queue_new_products() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hrwsi.harvester_product_queue (product_id)
    SELECT id FROM new_table
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER harvester_product_queue_trigger
    AFTER INSERT ON hrwsi.products
    REFERENCING NEW TABLE AS new_table
    FOR EACH STATEMENT EXECUTE FUNCTION hrwsi.harvester_queue_new_products();

-- An existing database: every product some condition takes and not yet its input.
INSERT INTO hrwsi.harvester_product_queue (product_id)
SELECT p.id
FROM hrwsi.products AS p
JOIN hrwsi.product_type AS pt ON pt.id = p.product_type_id
JOIN hrwsi.processing_routine AS r ON r.input_type = pt.data_type
JOIN hrwsi.processing_condition AS pc ON pc.processing_routine_name = r.name
WHERE NOT EXISTS (
    SELECT 1 FROM hrwsi.input AS existing
    WHERE existing.processing_condition_name = pc.name
      AND existing.input_path = p.product_path
)
ON CONFLICT DO NOTHING;
