-- name: seed_routine
-- Insert or update one processing routine from the configuration (no-op when unchanged; an unset docker image keeps the stored one).
INSERT INTO hrwsi.processing_routine AS r
    (name, cpu, ram, storage_space, duration, docker_image, input_type, product_data_type,
     product_type_code)
VALUES (%(name)s, %(cpu)s, %(ram)s, %(storage)s, %(duration)s, %(docker_image)s, %(input_type)s,
        %(product_data_type)s, %(product_type_code)s)
ON CONFLICT (name) DO UPDATE SET
    cpu = EXCLUDED.cpu, ram = EXCLUDED.ram, storage_space = EXCLUDED.storage_space,
    duration = EXCLUDED.duration, docker_image = coalesce(EXCLUDED.docker_image, r.docker_image),
    input_type = EXCLUDED.input_type, product_data_type = EXCLUDED.product_data_type,
    product_type_code = EXCLUDED.product_type_code
WHERE (r.cpu, r.ram, r.storage_space, r.duration, r.docker_image, r.input_type,
       r.product_data_type, r.product_type_code)
      IS DISTINCT FROM
      (EXCLUDED.cpu, EXCLUDED.ram, EXCLUDED.storage_space, EXCLUDED.duration,
       coalesce(EXCLUDED.docker_image, r.docker_image), EXCLUDED.input_type,
       EXCLUDED.product_data_type, EXCLUDED.product_type_code)

-- name: seed_condition
-- Insert or update one processing condition from the configuration (no-op when unchanged; an existing non-empty description, e.g. a v1 operator's, is kept).
INSERT INTO hrwsi.processing_condition AS c (name, processing_routine_name, description)
VALUES (%(name)s, %(routine)s, %(description)s)
ON CONFLICT (name) DO UPDATE SET
    processing_routine_name = EXCLUDED.processing_routine_name,
    description = coalesce(nullif(c.description, ''), EXCLUDED.description)
WHERE (c.processing_routine_name, c.description)
      IS DISTINCT FROM
      (EXCLUDED.processing_routine_name, coalesce(nullif(c.description, ''), EXCLUDED.description))

-- name: seed_product_type
-- Make sure the product type a routine makes exists (matched by code).
INSERT INTO hrwsi.product_type (code, name, data_type, description)
SELECT %(code)s, %(code)s, %(data_type)s, %(description)s
WHERE NOT EXISTS (SELECT 1 FROM hrwsi.product_type WHERE code = %(code)s)
ON CONFLICT DO NOTHING
