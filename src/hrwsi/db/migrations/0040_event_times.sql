-- Precise, zoned times of the events the latency figures are made of: when a dispatch row
-- and a product row were written (the v1 columns are zone-less timestamps set by the writer).
ALTER TABLE hrwsi.nomad_job_dispatch
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT clock_timestamp();
ALTER TABLE hrwsi.products
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT clock_timestamp();
ALTER TABLE hrwsi.processing_status_workflow
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT clock_timestamp();
