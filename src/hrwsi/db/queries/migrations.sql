-- name: migrations_lock
-- Serialise migration runs across processes.
SELECT pg_advisory_lock(%s)

-- name: migrations_unlock
-- Release the migration lock.
SELECT pg_advisory_unlock(%s)

-- name: migrations_create_table
-- The table recording which migrations ran.
CREATE SCHEMA IF NOT EXISTS hrwsi;
CREATE TABLE IF NOT EXISTS hrwsi.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: migrations_applied
-- Versions already applied, with their checksums.
SELECT version, checksum FROM hrwsi.schema_migrations ORDER BY version

-- name: migrations_record
-- Record one applied migration.
INSERT INTO hrwsi.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)

-- name: migrations_table_exists
-- The migrations table, or NULL when the schema was never initialised by hrwsi.
SELECT to_regclass('hrwsi.schema_migrations')

-- name: migrations_schema_exists
-- The hrwsi schema, or NULL when the database has none (hrwsi db init never ran).
SELECT to_regnamespace('hrwsi')
