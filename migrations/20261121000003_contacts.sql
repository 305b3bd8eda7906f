-- Contacts, contact lists and their members, the contact change audit, and import jobs/chunks.

-- vendor_id has no foreign key on purpose: a per-row FK check costs ~4 µs per imported row
-- (seconds per million). Vendors cannot be deleted (trigger on vendors) and tenant writes are
-- pinned to the caller's vendor by RLS, so the FK would add cost and no safety.
CREATE TABLE contacts (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id              uuid NOT NULL,
    -- E.164 digits without '+'. Collation "C" makes the (vendor_id, mobile) unique index serve
    -- number-prefix search too (`starts_with(mobile, $prefix)`).
    mobile                 text COLLATE "C" NOT NULL CHECK (mobile ~ '^[1-9][0-9]{6,14}$'),
    -- ISO 3166-1 alpha-2 region libphonenumber assigned to the number (pricing market lookup)
    country                text NULL CHECK (country ~ '^[A-Z]{2}$'),
    attributes             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    -- display name and its search key are derived from attributes->>'name' (never written directly)
    name                   text GENERATED ALWAYS AS (NULLIF(btrim(attributes ->> 'name'), '')) STORED,
    name_search            text COLLATE "C"
                           GENERATED ALWAYS AS (lower(NULLIF(btrim(attributes ->> 'name'), ''))) STORED,
    opted_out              boolean NOT NULL DEFAULT false,
    opted_out_at           timestamptz NULL,
    opt_out_reason         text NULL CHECK (length(opt_out_reason) <= 1000),
    opt_out_source         text NULL CHECK (opt_out_source IN ('API', 'INBOUND_KEYWORD', 'IMPORT', 'ADMIN', 'META')),
    opt_out_wa_message_id  text NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_vendor_id_mobile_key UNIQUE (vendor_id, mobile),
    -- cursor pagination (vendor_id, id) and target of tenant-consistent composite foreign keys
    CONSTRAINT contacts_vendor_id_id_key UNIQUE (vendor_id, id),
    CONSTRAINT contacts_opted_out_at_required CHECK (NOT opted_out OR opted_out_at IS NOT NULL)
);
COMMENT ON COLUMN contacts.name IS 'Generated from attributes->>''name''. To rename, update attributes.';
COMMENT ON COLUMN contacts.name_search IS 'lower(name), collation C: search with starts_with(name_search, lower($1)) (leakproof, so it stays index-usable under RLS).';
-- name-prefix search, ordered by name then id for keyset pagination
CREATE INDEX contacts_vendor_name_search_idx ON contacts (vendor_id, name_search, id);
CREATE TRIGGER contacts_set_updated_at BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE contact_lists (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id     uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    description   text NULL CHECK (length(description) <= 2000),
    -- maintained by statement-level triggers on contact_list_members
    member_count  integer NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_by    uuid NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contact_lists_vendor_id_name_key UNIQUE (vendor_id, name),
    CONSTRAINT contact_lists_vendor_id_id_key UNIQUE (vendor_id, id),
    CONSTRAINT contact_lists_created_by_fkey FOREIGN KEY (vendor_id, created_by)
        REFERENCES users (vendor_id, id) ON DELETE RESTRICT
);
CREATE INDEX contact_lists_vendor_created_idx ON contact_lists (vendor_id, created_at DESC, id DESC);
CREATE TRIGGER contact_lists_set_updated_at BEFORE UPDATE ON contact_lists
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Membership rows die with their list or their contact (CASCADE); the composite keys make a
-- membership between one vendor's list and another vendor's contact impossible.
CREATE TABLE contact_list_members (
    list_id     uuid NOT NULL,
    contact_id  uuid NOT NULL,
    vendor_id   uuid NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, contact_id),
    CONSTRAINT contact_list_members_list_fkey FOREIGN KEY (vendor_id, list_id)
        REFERENCES contact_lists (vendor_id, id) ON DELETE CASCADE,
    CONSTRAINT contact_list_members_contact_fkey FOREIGN KEY (vendor_id, contact_id)
        REFERENCES contacts (vendor_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_list_members_contact_idx ON contact_list_members (vendor_id, contact_id);

CREATE FUNCTION contact_list_members_count_insert() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE contact_lists l SET member_count = l.member_count + d.n
    FROM (SELECT list_id, count(*) AS n FROM new_rows GROUP BY list_id ORDER BY list_id) d
    WHERE l.id = d.list_id;
    RETURN NULL;
END
$$;
CREATE FUNCTION contact_list_members_count_delete() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE contact_lists l SET member_count = l.member_count - d.n
    FROM (SELECT list_id, count(*) AS n FROM old_rows GROUP BY list_id ORDER BY list_id) d
    WHERE l.id = d.list_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER contact_list_members_count_insert AFTER INSERT ON contact_list_members
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION contact_list_members_count_insert();
CREATE TRIGGER contact_list_members_count_delete AFTER DELETE ON contact_list_members
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION contact_list_members_count_delete();
CREATE TRIGGER contact_list_members_no_update BEFORE UPDATE ON contact_list_members
    FOR EACH ROW EXECUTE FUNCTION forbid_change('memberships are added or removed, not updated');

-- Immutable audit of every contact create / update / delete, written by triggers on contacts
-- (set-based, one INSERT per statement). No foreign keys: audit rows outlive their subjects.
CREATE TABLE contact_changes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id      uuid NOT NULL,
    contact_id     uuid NOT NULL,
    action         text NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'DELETE')),
    before         jsonb NULL,
    after          jsonb NULL,
    import_job_id  uuid NULL,
    actor          text NULL,
    request_id     text NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((action = 'CREATE') = (before IS NULL)),
    CHECK ((action = 'DELETE') = (after IS NULL))
);
CREATE INDEX contact_changes_contact_idx ON contact_changes (vendor_id, contact_id, id);
CREATE INDEX contact_changes_import_job_idx ON contact_changes (import_job_id) WHERE import_job_id IS NOT NULL;
CREATE TRIGGER contact_changes_append_only BEFORE UPDATE OR DELETE ON contact_changes
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER contact_changes_no_truncate BEFORE TRUNCATE ON contact_changes
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- The audited image of a contact: its own data, without tenant id, derived and bookkeeping columns.
CREATE FUNCTION contact_audit_image(c contacts) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_jsonb(c) - ARRAY['vendor_id', 'name', 'name_search', 'created_at', 'updated_at'] $$;

CREATE FUNCTION contacts_audit() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    v_job     uuid := app_setting('import_job_id')::uuid;
    v_actor   text := app_setting('actor');
    v_request text := app_setting('request_id');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO contact_changes (vendor_id, contact_id, action, before, after, import_job_id, actor, request_id)
        SELECT n.vendor_id, n.id, 'CREATE', NULL, contact_audit_image(n), v_job, v_actor, v_request
        FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO contact_changes (vendor_id, contact_id, action, before, after, import_job_id, actor, request_id)
        SELECT n.vendor_id, n.id, 'UPDATE', contact_audit_image(o), contact_audit_image(n), v_job, v_actor, v_request
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE contact_audit_image(o) IS DISTINCT FROM contact_audit_image(n);   -- no-op updates leave no row
    ELSE
        INSERT INTO contact_changes (vendor_id, contact_id, action, before, after, import_job_id, actor, request_id)
        SELECT o.vendor_id, o.id, 'DELETE', contact_audit_image(o), NULL, v_job, v_actor, v_request
        FROM old_rows o;
    END IF;
    RETURN NULL;
END
$$;
-- (transition tables allow one event per trigger, hence three triggers)
CREATE TRIGGER contacts_audit_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_audit();
CREATE TRIGGER contacts_audit_update AFTER UPDATE ON contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_audit();
CREATE TRIGGER contacts_audit_delete AFTER DELETE ON contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION contacts_audit();

-- Import jobs (CSV / JSON bulk imports) and their chunks. Final rows (COMPLETED / FAILED) are
-- never updated; no row is ever deleted.
CREATE TABLE import_jobs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id         uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    created_by        uuid NULL,
    source            text NOT NULL CHECK (source IN ('CSV', 'JSON')),
    state             text NOT NULL DEFAULT 'QUEUED' CHECK (state IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED')),
    default_country   text NOT NULL CHECK (default_country ~ '^[A-Z]{2}$'),
    -- target list; deliberately no FK: a list may be deleted later, the job record stays as it was
    list_id           uuid NULL,
    file_name         text NULL CHECK (length(file_name) <= 500),
    source_ref        text NULL CHECK (length(source_ref) <= 2000),   -- where the uploaded file is stored
    content_type      text NULL,
    total_bytes       bigint NULL CHECK (total_bytes >= 0),
    bytes_processed   bigint NOT NULL DEFAULT 0 CHECK (bytes_processed >= 0),
    column_mapping    jsonb NULL CHECK (jsonb_typeof(column_mapping) = 'object'),
    delimiter         text NULL CHECK (length(delimiter) = 1),
    chunk_size        integer NOT NULL DEFAULT 5000 CHECK (chunk_size > 0),
    chunks_completed  integer NOT NULL DEFAULT 0 CHECK (chunks_completed >= 0),
    rows_seen         bigint NOT NULL DEFAULT 0 CHECK (rows_seen >= 0),
    rows_created      bigint NOT NULL DEFAULT 0 CHECK (rows_created >= 0),
    rows_updated      bigint NOT NULL DEFAULT 0 CHECK (rows_updated >= 0),
    rows_rejected     bigint NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_duplicate    bigint NOT NULL DEFAULT 0 CHECK (rows_duplicate >= 0),   -- collapsed within the file
    error_code        text NULL,
    error             text NULL,
    -- worker lease for crash recovery: a job whose lease expired is resumed by another worker
    lease_owner       text NULL,
    lease_expires_at  timestamptz NULL,
    started_at        timestamptz NULL,
    finished_at       timestamptz NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT import_jobs_vendor_id_id_key UNIQUE (vendor_id, id),
    CONSTRAINT import_jobs_created_by_fkey FOREIGN KEY (vendor_id, created_by)
        REFERENCES users (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT import_jobs_counts_le_seen
        CHECK (rows_created + rows_updated + rows_rejected + rows_duplicate <= rows_seen),
    CONSTRAINT import_jobs_finished_iff_final CHECK ((state IN ('COMPLETED', 'FAILED')) = (finished_at IS NOT NULL)),
    CONSTRAINT import_jobs_failed_has_error CHECK (state <> 'FAILED' OR error IS NOT NULL)
);
CREATE INDEX import_jobs_vendor_created_idx ON import_jobs (vendor_id, created_at DESC, id DESC);
-- workers pick up queued jobs and jobs whose lease expired
CREATE INDEX import_jobs_runnable_idx ON import_jobs (created_at) WHERE state IN ('QUEUED', 'PROCESSING');
CREATE TRIGGER import_jobs_set_updated_at BEFORE UPDATE ON import_jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One chunk = one transaction of the import worker (its contacts, its counts, its rejections).
CREATE TABLE import_chunks (
    job_id          uuid NOT NULL,
    seq             integer NOT NULL CHECK (seq >= 1),
    vendor_id       uuid NOT NULL,
    state           text NOT NULL DEFAULT 'PROCESSING' CHECK (state IN ('PROCESSING', 'COMPLETED', 'FAILED')),
    -- 1-based data-row numbers (the header is not counted), inclusive
    row_start       bigint NOT NULL CHECK (row_start >= 1),
    row_end         bigint NOT NULL,
    -- byte range of the chunk in the source file, for resuming after a crash
    byte_start      bigint NULL CHECK (byte_start >= 0),
    byte_end        bigint NULL,
    rows_seen       integer NOT NULL DEFAULT 0 CHECK (rows_seen >= 0),
    rows_created    integer NOT NULL DEFAULT 0 CHECK (rows_created >= 0),
    rows_updated    integer NOT NULL DEFAULT 0 CHECK (rows_updated >= 0),
    rows_rejected   integer NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    rows_duplicate  integer NOT NULL DEFAULT 0 CHECK (rows_duplicate >= 0),
    -- [{"row": 17, "raw": "+91 98", "reason": "TOO_SHORT", "field": "mobile"}, ...]
    rejected_rows   jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rejected_rows) = 'array'),
    error           text NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq),
    CONSTRAINT import_chunks_job_fkey FOREIGN KEY (vendor_id, job_id)
        REFERENCES import_jobs (vendor_id, id) ON DELETE RESTRICT,
    CHECK (row_end >= row_start - 1),
    CHECK (byte_end >= byte_start),
    CONSTRAINT import_chunks_counts_le_seen
        CHECK (rows_created + rows_updated + rows_rejected + rows_duplicate <= rows_seen),
    CONSTRAINT import_chunks_finished_iff_final CHECK ((state IN ('COMPLETED', 'FAILED')) = (finished_at IS NOT NULL))
);
CREATE TRIGGER import_chunks_set_updated_at BEFORE UPDATE ON import_chunks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE FUNCTION import_rows_immutable_when_final() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'DELETE on % is not allowed: import records are kept forever', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.state IN ('COMPLETED', 'FAILED') THEN
        RAISE EXCEPTION '% row is final (state %) and cannot be changed', TG_TABLE_NAME, OLD.state
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER import_jobs_immutable_when_final BEFORE UPDATE OR DELETE ON import_jobs
    FOR EACH ROW EXECUTE FUNCTION import_rows_immutable_when_final();
CREATE TRIGGER import_jobs_no_truncate BEFORE TRUNCATE ON import_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change('import records are kept forever');
CREATE TRIGGER import_chunks_immutable_when_final BEFORE UPDATE OR DELETE ON import_chunks
    FOR EACH ROW EXECUTE FUNCTION import_rows_immutable_when_final();
CREATE TRIGGER import_chunks_no_truncate BEFORE TRUNCATE ON import_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change('import records are kept forever');

-- Row-level security -------------------------------------------------------------------------

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON contacts TO kloyst_tenant;

ALTER TABLE contact_lists ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_lists FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON contact_lists TO kloyst_tenant;

ALTER TABLE contact_list_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_list_members FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, DELETE ON contact_list_members TO kloyst_tenant;

ALTER TABLE contact_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_changes FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT ON contact_changes TO kloyst_tenant;
GRANT USAGE ON SEQUENCE contact_changes_id_seq TO kloyst_tenant;

ALTER TABLE import_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_jobs FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON import_jobs TO kloyst_tenant;

ALTER TABLE import_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_chunks FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON import_chunks TO kloyst_tenant;
