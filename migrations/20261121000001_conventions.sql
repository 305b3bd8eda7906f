-- Shared SQL conventions for every later migration.
--
-- * Ids: UUID (gen_random_uuid(), built into PostgreSQL 13+) for entities, BIGINT identity for
--   append-only logs and queues.
-- * Timestamps: TIMESTAMPTZ, `created_at` / `updated_at` NOT NULL DEFAULT now(); `updated_at` is
--   maintained by the set_updated_at() trigger on every mutable table.
-- * Money: NUMERIC, never float. Enumerations: TEXT + CHECK (no PostgreSQL enum types, so Rust
--   maps them as plain strings and adding a value is a one-line constraint change).
-- * Tenancy: every tenant-owned table has `vendor_id` and row-level security keyed on the
--   per-transaction setting `app.vendor_id` (see docs/DATA_MODEL.md).
-- * Append-only tables refuse UPDATE / DELETE / TRUNCATE through forbid_change() triggers.

-- The role tenant-scoped transactions switch to: `SET LOCAL ROLE kloyst_tenant`.
-- Roles are cluster-wide and many test databases are migrated concurrently in one cluster:
-- a concurrent CREATE ROLE either sees the committed role (duplicate_object) or loses the
-- race on pg_authid's unique index (unique_violation). Both mean "it exists".
DO $$
BEGIN
    CREATE ROLE kloyst_tenant NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The migrating (= application) role must be able to SET ROLE kloyst_tenant. A superuser can
-- already; a non-superuser owner needs membership (needs CREATEROLE or ADMIN on the role).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'kloyst_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT kloyst_tenant TO %I', current_user);
    END IF;
EXCEPTION
    WHEN unique_violation THEN NULL; -- granted concurrently by another migration
END
$$;

GRANT USAGE ON SCHEMA public TO kloyst_tenant;

-- The tenant of the current transaction, or NULL when none is set (then RLS shows no rows).
-- Set it with `SELECT set_config('app.vendor_id', $1, true)` (bindable) or
-- `SET LOCAL app.vendor_id = '<uuid>'`. A malformed value raises invalid_text_representation.
CREATE FUNCTION app_current_vendor_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.vendor_id', true), '')::uuid $$;

-- Optional per-transaction context recorded by audit triggers (contact_changes):
--   app.actor          e.g. 'user:<uuid>', 'api_key:<uuid>', 'system:webhook-worker'
--   app.request_id     the request / correlation id
--   app.import_job_id  the import job whose chunk is being applied
CREATE FUNCTION app_setting(name text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.' || name, true), '') $$;

CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- BEFORE UPDATE OR DELETE (row) and BEFORE TRUNCATE (statement) trigger for append-only tables.
-- Optional trigger argument: the reason shown in the error (default: the table is append-only).
CREATE FUNCTION forbid_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: %', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
            coalesce(TG_ARGV[0], 'the table is append-only (post a compensating row instead)')
        USING ERRCODE = 'insufficient_privilege';
END
$$;
