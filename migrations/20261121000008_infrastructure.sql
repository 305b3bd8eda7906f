-- Infrastructure: the transactional outbox, the webhook inbox (also the dead-letter store),
-- the audit log and stored idempotency keys.

-- Transactional outbox. Written in the same transaction as the change that caused the event;
-- outbox-relay publishes committed rows to Redis streams (at least once) and sets published_at.
-- The shape is a contract with crates/outbox: do not change it casually.
CREATE TABLE outbox_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    stream          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         JSONB NOT NULL,
    vendor_id       UUID NULL,          -- no FK (system events have none; keeps the insert path lean)
    correlation_id  TEXT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at    TIMESTAMPTZ NULL
);
CREATE INDEX outbox_events_unpublished_idx ON outbox_events (id) WHERE published_at IS NULL;

-- Wake the relay: one NOTIFY per inserting statement (PostgreSQL also folds identical
-- notifications of one transaction into one, delivered at commit; none on rollback).
CREATE FUNCTION outbox_events_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_notify();

-- No RLS: tenant transactions insert events too. They may not read other vendors' payloads:
-- only the id columns are readable (enough for INSERT … RETURNING id, event_id).
GRANT INSERT ON outbox_events TO kloyst_tenant;
GRANT SELECT (id, event_id) ON outbox_events TO kloyst_tenant;
GRANT USAGE ON SEQUENCE outbox_events_id_seq TO kloyst_tenant;

-- Every webhook exactly as received (raw body and the headers that matter), stored before
-- answering 200. Processing state, attempts and last error make it the dead-letter store too
-- (state DEAD). System-only.
CREATE TABLE webhook_inbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL CHECK (source IN ('META', 'RAZORPAY')),
    received_at      timestamptz NOT NULL DEFAULT now(),
    headers          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    raw_body         bytea NOT NULL,
    body_sha256      bytea NOT NULL CHECK (octet_length(body_sha256) = 32),
    -- duplicate-delivery key, e.g. 'razorpay:<x-razorpay-event-id>'; NULL = no key
    dedupe_key       text NULL CHECK (length(dedupe_key) BETWEEN 1 AND 255),
    event_type       text NULL,          -- e.g. payment.captured, or the Meta change fields
    request_id       text NULL,
    state            text NOT NULL DEFAULT 'RECEIVED'
                     CHECK (state IN ('RECEIVED', 'PROCESSING', 'PROCESSED', 'FAILED', 'DEAD')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- due time: for RECEIVED/FAILED the next try; for PROCESSING the lease expiry (a crashed
    -- processor's row becomes due again)
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NULL,
    processed_at     timestamptz NULL,
    dead_at          timestamptz NULL,
    replay_count     integer NOT NULL DEFAULT 0 CHECK (replay_count >= 0),
    CONSTRAINT webhook_inbox_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT webhook_inbox_processed_has_time CHECK ((state = 'PROCESSED') = (processed_at IS NOT NULL)),
    CONSTRAINT webhook_inbox_dead_has_time CHECK ((state = 'DEAD') = (dead_at IS NOT NULL))
);
-- the processor's queue (safety-net poll): unprocessed rows by due time
CREATE INDEX webhook_inbox_due_idx ON webhook_inbox (next_attempt_at, id)
    WHERE state IN ('RECEIVED', 'PROCESSING', 'FAILED');
-- dead-letter listing
CREATE INDEX webhook_inbox_dead_idx ON webhook_inbox (dead_at DESC, id DESC) WHERE state = 'DEAD';

-- Append-only audit trail of mutations: who, which vendor, what, on what, when, from where.
-- Never a password, an OTP or a token in details.
CREATE TABLE audit_log (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id         uuid NULL,         -- NULL for events before a tenant exists (register, failed login)
    actor_kind        text NOT NULL CHECK (actor_kind IN ('USER', 'API_KEY', 'SYSTEM', 'ANONYMOUS')),
    actor_user_id     uuid NULL,
    actor_api_key_id  uuid NULL,
    action            text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),   -- e.g. auth.login_failed
    target_type       text NULL,
    target_id         text NULL,
    request_id        text NULL,
    ip                inet NULL,
    user_agent        text NULL CHECK (length(user_agent) <= 512),
    details           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_vendor_idx ON audit_log (vendor_id, at DESC, id DESC);
CREATE INDEX audit_log_actor_user_idx ON audit_log (actor_user_id, at DESC) WHERE actor_user_id IS NOT NULL;
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id) WHERE target_id IS NOT NULL;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Idempotency-Key handling for money- and message-creating POSTs. Insert the key first
-- (ON CONFLICT DO NOTHING) with response_status NULL = in progress; store the response when done;
-- a retry with the same key and request_hash replays it, a different hash is refused (422).
CREATE TABLE idempotency_keys (
    vendor_id         uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    key               text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method            text NOT NULL CHECK (method ~ '^[A-Z]{3,7}$'),
    route             text NOT NULL,
    request_hash      bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    response_status   smallint NULL CHECK (response_status BETWEEN 100 AND 599),
    response_headers  jsonb NULL,
    response_body     jsonb NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz NULL,
    expires_at        timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (vendor_id, key),
    CHECK ((response_status IS NULL) = (completed_at IS NULL))
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT ON audit_log TO kloyst_tenant;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO kloyst_tenant;

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO kloyst_tenant;

-- webhook_inbox: system only, no grants to the tenant role.
