-- CSV uploads are kept in Postgres until their import finishes: every api-gateway and
-- worker-pool copy reaches them without a shared disk, and an upload is stored in the same
-- transaction that creates its job (a job never exists without its whole file).
-- Fixed-size parts (the last one shorter) let a resumed import seek to a byte offset.
CREATE TABLE import_uploads (
    job_id     uuid NOT NULL,
    part       integer NOT NULL CHECK (part >= 0),
    vendor_id  uuid NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (job_id, part),
    CONSTRAINT import_uploads_job_fkey FOREIGN KEY (vendor_id, job_id)
        REFERENCES import_jobs (vendor_id, id) ON DELETE RESTRICT
);
-- Parts are incompressible-ish text read once: skip TOAST compression work on the hot path.
ALTER TABLE import_uploads ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE import_uploads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_uploads FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, DELETE ON import_uploads TO kloyst_tenant;

-- How the worker reads the file (delimiter, headers, number column, first data byte), fixed
-- when the upload is accepted; and rows that matched an existing contact without changing it.
ALTER TABLE import_jobs ADD COLUMN csv_layout jsonb NULL CHECK (jsonb_typeof(csv_layout) = 'object');
ALTER TABLE import_jobs ADD COLUMN rows_unchanged bigint NOT NULL DEFAULT 0 CHECK (rows_unchanged >= 0);
ALTER TABLE import_chunks ADD COLUMN rows_unchanged integer NOT NULL DEFAULT 0 CHECK (rows_unchanged >= 0);
ALTER TABLE import_jobs DROP CONSTRAINT import_jobs_counts_le_seen;
ALTER TABLE import_jobs ADD CONSTRAINT import_jobs_counts_le_seen
    CHECK (rows_created + rows_updated + rows_unchanged + rows_rejected + rows_duplicate <= rows_seen);
ALTER TABLE import_chunks DROP CONSTRAINT import_chunks_counts_le_seen;
ALTER TABLE import_chunks ADD CONSTRAINT import_chunks_counts_le_seen
    CHECK (rows_created + rows_updated + rows_unchanged + rows_rejected + rows_duplicate <= rows_seen);

-- `GET /v1/contacts?opted_out=true` walks only the opted-out contacts (a small share).
CREATE INDEX contacts_vendor_opted_out_idx ON contacts (vendor_id, id) WHERE opted_out;
