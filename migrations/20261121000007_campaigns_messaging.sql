-- Campaigns, their frozen recipient lists, message logs (outbound and inbound) and statuses
-- parked while their message is not yet known.

CREATE TABLE campaigns (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id           uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    -- BULK: template × list; SINGLE: POST /v1/messages (a one-recipient campaign);
    -- RETRY: follow-up re-targeting the retryable failures of parent_campaign_id
    kind                text NOT NULL DEFAULT 'BULK' CHECK (kind IN ('BULK', 'SINGLE', 'RETRY')),
    name                text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    template_id         uuid NOT NULL,
    list_id             uuid NULL,       -- NULL for SINGLE, or when the list was deleted later
    parent_campaign_id  uuid NULL,
    phone_number_id     uuid NULL REFERENCES phone_numbers (id) ON DELETE RESTRICT,   -- sending number
    -- {{n}} → {"attribute": "name", "fallback": "there"} | {"literal": "50%"}
    parameters          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) IN ('object', 'array')),
    status              text NOT NULL DEFAULT 'DRAFT' CHECK (status IN ('DRAFT', 'SCHEDULED', 'QUEUED', 'PROCESSING',
                                                                       'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED')),
    pause_reason        text NULL,       -- MANUAL, TOKEN_EXPIRED, TEMPLATE_PAUSED, …
    failure_reason      text NULL,       -- SCHEDULE_MISSED, WATCHDOG_TIMEOUT, …
    scheduled_at        timestamptz NULL,
    queued_at           timestamptz NULL,
    started_at          timestamptz NULL,
    paused_at           timestamptz NULL,
    finished_at         timestamptz NULL,
    last_sent_at        timestamptz NULL,   -- settle time for the final accounting
    last_progress_at    timestamptz NULL,   -- watchdog: a PROCESSING campaign that stopped moving
    -- live counters (funnel counts: delivered includes read; sent includes delivered)
    total_count         integer NOT NULL DEFAULT 0 CHECK (total_count >= 0),
    pending_count       integer NOT NULL DEFAULT 0 CHECK (pending_count >= 0),
    sent_count          integer NOT NULL DEFAULT 0 CHECK (sent_count >= 0),
    delivered_count     integer NOT NULL DEFAULT 0 CHECK (delivered_count >= 0),
    read_count          integer NOT NULL DEFAULT 0 CHECK (read_count >= 0),
    failed_count        integer NOT NULL DEFAULT 0 CHECK (failed_count >= 0),
    unknown_count       integer NOT NULL DEFAULT 0 CHECK (unknown_count >= 0),
    skipped_count       integer NOT NULL DEFAULT 0 CHECK (skipped_count >= 0),
    opted_out_count     integer NOT NULL DEFAULT 0 CHECK (opted_out_count >= 0),  -- excluded at launch
    -- money, in the wallet's currency
    currency            text NOT NULL DEFAULT 'INR' CHECK (currency ~ '^[A-Z]{3}$'),
    quoted_cost         numeric(14, 4) NOT NULL DEFAULT 0 CHECK (quoted_cost >= 0),
    actual_cost         numeric(14, 4) NOT NULL DEFAULT 0 CHECK (actual_cost >= 0),
    quote               jsonb NULL,      -- per-market breakdown at launch
    idempotency_key     text NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    created_by          uuid NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_vendor_id_id_key UNIQUE (vendor_id, id),
    CONSTRAINT campaigns_vendor_id_idempotency_key_key UNIQUE (vendor_id, idempotency_key),
    CONSTRAINT campaigns_template_fkey FOREIGN KEY (vendor_id, template_id)
        REFERENCES templates (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT campaigns_list_fkey FOREIGN KEY (vendor_id, list_id)
        REFERENCES contact_lists (vendor_id, id) ON DELETE SET NULL (list_id),
    CONSTRAINT campaigns_parent_fkey FOREIGN KEY (vendor_id, parent_campaign_id)
        REFERENCES campaigns (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT campaigns_created_by_fkey FOREIGN KEY (vendor_id, created_by)
        REFERENCES users (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT campaigns_scheduled_has_time CHECK (status <> 'SCHEDULED' OR scheduled_at IS NOT NULL),
    CONSTRAINT campaigns_finished_iff_final
        CHECK ((status IN ('COMPLETED', 'FAILED', 'CANCELLED')) = (finished_at IS NOT NULL)),
    CONSTRAINT campaigns_paused_has_reason CHECK (status <> 'PAUSED' OR pause_reason IS NOT NULL),
    CONSTRAINT campaigns_failed_has_reason CHECK (status <> 'FAILED' OR failure_reason IS NOT NULL),
    CONSTRAINT campaigns_retry_has_parent CHECK (kind <> 'RETRY' OR parent_campaign_id IS NOT NULL)
);
CREATE INDEX campaigns_vendor_created_idx ON campaigns (vendor_id, created_at DESC, id DESC);
-- scheduler: due SCHEDULED campaigns; watchdog: campaigns that should be moving
CREATE INDEX campaigns_scheduled_idx ON campaigns (scheduled_at) WHERE status = 'SCHEDULED';
CREATE INDEX campaigns_running_idx ON campaigns (last_progress_at) WHERE status IN ('QUEUED', 'PROCESSING', 'PAUSED');
CREATE TRIGGER campaigns_set_updated_at BEFORE UPDATE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A campaign's hold (wallet_holds.campaign_id) must belong to a campaign of the same vendor.
ALTER TABLE wallet_holds ADD CONSTRAINT wallet_holds_campaign_fkey FOREIGN KEY (vendor_id, campaign_id)
    REFERENCES campaigns (vendor_id, id) ON DELETE RESTRICT;

-- The recipients, frozen at launch: seq is dense 1..N so dispatch jobs carry (campaign, seq range).
-- contact_id is a snapshot reference without FK (the contact may be deleted later; mobile stays).
-- Dispatch state only; delivery statuses live in message_logs. No updated_at trigger on this hot
-- table: the state transitions carry their own timestamps.
-- No per-row FK to campaigns either: it doubled the time of a 100k-recipient launch insert
-- (measured 1.25 s vs 0.58 s). Recipients are inserted in the launch transaction that creates
-- their campaign (same vendor_id, pinned by RLS); deleting a campaign deletes its recipients
-- (statement trigger below).
CREATE TABLE campaign_recipients (
    campaign_id      uuid NOT NULL,
    seq              integer NOT NULL CHECK (seq >= 1),
    vendor_id        uuid NOT NULL,
    contact_id       uuid NULL,
    mobile           text COLLATE "C" NOT NULL CHECK (mobile ~ '^[1-9][0-9]{6,14}$'),
    country          text NULL CHECK (country ~ '^[A-Z]{2}$'),
    -- explicit parameter values (SINGLE messages); NULL = render from the contact's attributes
    params           jsonb NULL,
    status           text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'SENDING', 'SENT', 'FAILED', 'UNKNOWN', 'SKIPPED', 'CANCELLED')),
    -- set with SENDING, before the Meta call: a recipient left SENDING by a dead worker is
    -- reconciled (→ UNKNOWN or SENT via its wamid), never blindly resent
    attempt_id       uuid NULL,
    attempts         smallint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NULL,
    wa_message_id    text NULL,
    error_code       integer NULL,
    error_message    text NULL,
    retryable        boolean NULL,
    sending_at       timestamptz NULL,
    sent_at          timestamptz NULL,
    failed_at        timestamptz NULL,
    PRIMARY KEY (campaign_id, seq),
    CONSTRAINT campaign_recipients_sending_has_attempt
        CHECK (status NOT IN ('SENDING', 'UNKNOWN') OR (attempt_id IS NOT NULL AND sending_at IS NOT NULL)),
    CONSTRAINT campaign_recipients_sent_has_wamid CHECK (status <> 'SENT' OR wa_message_id IS NOT NULL)
);
-- Recipients needing attention (SENDING/UNKNOWN reconciliation, FAILED for retry-failed and
-- the error report, SKIPPED/CANCELLED). PENDING and SENT rows, the vast majority, stay out of it,
-- so a launch inserts no entries here. Listing PENDING/SENT walks the primary key.
CREATE INDEX campaign_recipients_attention_idx ON campaign_recipients (campaign_id, status, seq)
    WHERE status NOT IN ('PENDING', 'SENT');

CREATE FUNCTION campaigns_delete_recipients() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM campaign_recipients r USING old_rows o WHERE r.campaign_id = o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER campaigns_delete_recipients AFTER DELETE ON campaigns
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION campaigns_delete_recipients();

-- Forward-only status order: PENDING/RECEIVED 0 < SENT 1 < DELIVERED 2 < READ 3 < FAILED 4
-- (FAILED is terminal; a delivered/read after it is recorded and flagged, not applied).
CREATE FUNCTION message_status_rank(p_status text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (CASE p_status
                WHEN 'PENDING' THEN 0 WHEN 'RECEIVED' THEN 0
                WHEN 'SENT' THEN 1 WHEN 'DELIVERED' THEN 2 WHEN 'READ' THEN 3
                WHEN 'FAILED' THEN 4
            END)::smallint
$$;

CREATE TABLE message_logs (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vendor_id              uuid NOT NULL,      -- no direct FK (hot insert path; vendors are never deleted)
    campaign_id            uuid NULL,
    recipient_seq          integer NULL,
    direction              text NOT NULL CHECK (direction IN ('OUTBOUND', 'INBOUND')),
    message_type           text NOT NULL DEFAULT 'template' CHECK (message_type ~ '^[a-z_]{1,32}$'),
    template_id            uuid NULL,
    contact_id             uuid NULL,          -- snapshot reference, no FK
    phone_number_id        text NULL,          -- Meta's id of our number that sent / received it
    -- the customer's number (to for OUTBOUND, from for INBOUND), E.164 digits
    recipient              text COLLATE "C" NOT NULL CHECK (length(recipient) BETWEEN 1 AND 64),
    country                text NULL CHECK (country ~ '^[A-Z]{2}$'),
    wa_message_id          text NULL,
    status                 text NOT NULL CHECK (status IN ('PENDING', 'SENT', 'DELIVERED', 'READ', 'FAILED', 'RECEIVED')),
    status_rank            smallint GENERATED ALWAYS AS (message_status_rank(status)) STORED,
    status_at              timestamptz NULL,   -- Meta's timestamp of the current status
    -- anomalies, e.g. 'LATE_STATUS_AFTER_FAILED', 'CATEGORY_DIFFERS'
    flags                  text[] NOT NULL DEFAULT '{}',
    -- pricing: what the template was vs what Meta reported
    template_category      text NULL CHECK (template_category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION')),
    pricing_category       text NULL CHECK (pricing_category ~ '^[A-Z_]{1,64}$'),   -- normalised: AUTHENTICATION_INTERNATIONAL …
    pricing_model          text NULL CHECK (pricing_model IN ('CBP', 'PMP')),
    pricing_type           text NULL CHECK (pricing_type ~ '^[a-z_]{1,64}$'),      -- regular, free_customer_service, …
    billable               boolean NULL,
    conversation_id        text NULL,
    -- the charge (wallet currency unless stated); set once, with the ledger row `debit:<wamid>`
    market                 text NULL,
    rate_card_id           uuid NULL,
    meta_rate              numeric(14, 6) NULL CHECK (meta_rate >= 0),   -- in rate_currency
    rate_currency          text NULL CHECK (rate_currency ~ '^[A-Z]{3}$'),
    fx_rate                numeric(18, 8) NULL CHECK (fx_rate > 0),
    meta_cost              numeric(14, 4) NULL CHECK (meta_cost >= 0),
    margin                 numeric(14, 4) NULL CHECK (margin >= 0),
    cost                   numeric(14, 4) NULL CHECK (cost >= 0),
    charged_at             timestamptz NULL,
    ledger_transaction_id  bigint NULL,
    -- errors (Meta's code / title / message / details)
    error_code             integer NULL,
    error_title            text NULL,
    error_message          text NULL,
    error_details          jsonb NULL,
    meta_response          jsonb NULL,         -- the send call's response
    body                   jsonb NULL,         -- INBOUND message content
    sent_at                timestamptz NULL,
    delivered_at           timestamptz NULL,
    read_at                timestamptz NULL,
    failed_at              timestamptz NULL,
    received_at            timestamptz NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_logs_wa_message_id_key UNIQUE (wa_message_id),
    CONSTRAINT message_logs_campaign_fkey FOREIGN KEY (vendor_id, campaign_id)
        REFERENCES campaigns (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT message_logs_template_fkey FOREIGN KEY (vendor_id, template_id)
        REFERENCES templates (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT message_logs_inbound_is_received CHECK ((direction = 'INBOUND') = (status = 'RECEIVED')),
    CONSTRAINT message_logs_outbound_recipient_digits
        CHECK (direction = 'INBOUND' OR recipient ~ '^[1-9][0-9]{6,14}$'),
    CONSTRAINT message_logs_accepted_has_wamid
        CHECK (status NOT IN ('SENT', 'DELIVERED', 'READ', 'RECEIVED') OR wa_message_id IS NOT NULL),
    CONSTRAINT message_logs_seq_needs_campaign CHECK (recipient_seq IS NULL OR campaign_id IS NOT NULL),
    CONSTRAINT message_logs_charge_complete CHECK (charged_at IS NULL OR cost IS NOT NULL)
);
CREATE INDEX message_logs_vendor_idx ON message_logs (vendor_id, id DESC);
CREATE INDEX message_logs_campaign_status_idx ON message_logs (campaign_id, status, id) WHERE campaign_id IS NOT NULL;
-- one log per campaign recipient
CREATE UNIQUE INDEX message_logs_campaign_recipient_key ON message_logs (campaign_id, recipient_seq)
    WHERE recipient_seq IS NOT NULL;
-- inbound routing under the shared WABA: the vendor that last messaged this number
CREATE INDEX message_logs_outbound_recipient_idx ON message_logs (recipient, id DESC) WHERE direction = 'OUTBOUND';
CREATE TRIGGER message_logs_set_updated_at BEFORE UPDATE ON message_logs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Statuses whose wamid is not (yet) in message_logs: the webhook raced the send's commit.
-- Retried until applied (then deleted) or, after the configured time, marked DEAD with a reason.
-- System-only (no vendor is known for them).
CREATE TABLE parked_statuses (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wa_message_id    text NOT NULL,
    status           text NOT NULL CHECK (status ~ '^[A-Z_]{1,32}$'),   -- SENT, DELIVERED, READ, FAILED …
    status_at        timestamptz NULL,
    payload          jsonb NOT NULL,     -- the status object as Meta sent it
    inbox_id         bigint NULL,        -- webhook_inbox row it came from
    state            text NOT NULL DEFAULT 'PARKED' CHECK (state IN ('PARKED', 'DEAD')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz NULL,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NULL,
    dead_at          timestamptz NULL,
    CONSTRAINT parked_statuses_wa_message_id_status_key UNIQUE (wa_message_id, status),
    CHECK ((state = 'DEAD') = (dead_at IS NOT NULL))
);
CREATE INDEX parked_statuses_due_idx ON parked_statuses (next_attempt_at) WHERE state = 'PARKED';

-- Row-level security -------------------------------------------------------------------------

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaigns FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON campaigns TO kloyst_tenant;

ALTER TABLE campaign_recipients ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaign_recipients FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON campaign_recipients TO kloyst_tenant;

ALTER TABLE message_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_logs FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON message_logs TO kloyst_tenant;
GRANT USAGE ON SEQUENCE message_logs_id_seq TO kloyst_tenant;

-- parked_statuses: system only, no grants to the tenant role.
