-- Campaign settlement and the daily books reconciliation.
--
-- A finished campaign (COMPLETED, FAILED, CANCELLED) is settled once every message is final for
-- charging, or CAMPAIGN_SETTLE_AFTER after its last send: the hold's remainder is released,
-- actual_cost is set to the sum of its messages' costs and settled_at is stamped.
ALTER TABLE campaigns ADD COLUMN settled_at timestamptz NULL;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_settled_is_finished
    CHECK (settled_at IS NULL OR status IN ('COMPLETED', 'FAILED', 'CANCELLED'));
-- the settlement pass: finished campaigns not settled yet (few; settled ones leave the index)
CREATE INDEX campaigns_unsettled_idx ON campaigns (finished_at, id)
    WHERE settled_at IS NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED');

-- Messages the applier could not charge, listed by the books reconciliation without walking
-- every message log.
CREATE INDEX message_logs_uncharged_flag_idx ON message_logs (id)
    WHERE flags && ARRAY['UNPRICED', 'CHARGE_REFUSED']::text[];

-- One row per books reconciliation run: what was checked and every difference found. The run
-- only reports; nothing is corrected. System-only (no grants to the tenant role).
CREATE TABLE books_reconciliations (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz NOT NULL,
    wallets_checked    bigint NOT NULL CHECK (wallets_checked >= 0),
    campaigns_checked  bigint NOT NULL CHECK (campaigns_checked >= 0),
    messages_checked   bigint NOT NULL CHECK (messages_checked >= 0),
    -- [{kind, informational, vendor_id, campaign_id, …, expected, actual}]
    differences        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(differences) = 'array'),
    -- differences that are not informational
    difference_count   integer NOT NULL CHECK (difference_count >= 0),
    CHECK (finished_at >= started_at)
);
CREATE INDEX books_reconciliations_started_idx ON books_reconciliations (started_at DESC);
