-- Money: one prepaid wallet per vendor, holds (reservations), the append-only ledger, and
-- Razorpay payment orders.
--
-- Sign convention (every ledger row has both columns):
--   amount      effect on wallets.balance   credits > 0, debits < 0, holds/releases = 0
--   hold_delta  effect on wallets.held      HOLD > 0, HOLD_RELEASE < 0, capture by a
--                                           DEBIT_MESSAGE < 0 (the part of the debit that
--                                           consumed a hold), otherwise 0
-- so that, for every wallet at every commit:
--   balance = Σ amount,  held = Σ hold_delta = Σ remaining of its ACTIVE holds,
--   available = balance − held,  balance ≥ −overdraft_limit.
-- balance_after / held_after on each row are the wallet's values after that row.

CREATE TABLE wallets (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id        uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    currency         text NOT NULL DEFAULT 'INR' CHECK (currency ~ '^[A-Z]{3}$'),
    balance          numeric(14, 4) NOT NULL DEFAULT 0,
    held             numeric(14, 4) NOT NULL DEFAULT 0 CHECK (held >= 0),
    available        numeric(14, 4) GENERATED ALWAYS AS (balance - held) STORED,
    -- per-vendor overdraft: how far below zero the balance may go (0 = never)
    overdraft_limit  numeric(14, 4) NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_vendor_id_key UNIQUE (vendor_id),
    CONSTRAINT wallets_id_vendor_id_key UNIQUE (id, vendor_id),
    CONSTRAINT wallets_balance_within_overdraft CHECK (balance >= -overdraft_limit)
);
CREATE TRIGGER wallets_set_updated_at BEFORE UPDATE ON wallets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A reservation of wallet money, e.g. a campaign's quoted cost. Captured by message debits,
-- the rest released when the campaign ends. remaining = amount − captured − released.
CREATE TABLE wallet_holds (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    wallet_id    uuid NOT NULL,
    vendor_id    uuid NOT NULL,
    campaign_id  uuid NULL,                 -- FK added with the campaigns table
    reference    text NOT NULL CHECK (length(reference) BETWEEN 1 AND 255),
    amount       numeric(14, 4) NOT NULL CHECK (amount > 0),
    captured     numeric(14, 4) NOT NULL DEFAULT 0 CHECK (captured >= 0),
    released     numeric(14, 4) NOT NULL DEFAULT 0 CHECK (released >= 0),
    remaining    numeric(14, 4) GENERATED ALWAYS AS (amount - captured - released) STORED,
    status       text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'CLOSED')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz NULL,
    CONSTRAINT wallet_holds_reference_key UNIQUE (reference),
    CONSTRAINT wallet_holds_campaign_id_key UNIQUE (campaign_id),
    CONSTRAINT wallet_holds_wallet_fkey FOREIGN KEY (wallet_id, vendor_id)
        REFERENCES wallets (id, vendor_id) ON DELETE RESTRICT,
    CONSTRAINT wallet_holds_not_overdrawn CHECK (captured + released <= amount),
    CONSTRAINT wallet_holds_closed_is_settled
        CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL) AND (status <> 'CLOSED' OR captured + released = amount))
);
CREATE INDEX wallet_holds_active_idx ON wallet_holds (wallet_id) WHERE status = 'ACTIVE';
CREATE TRIGGER wallet_holds_set_updated_at BEFORE UPDATE ON wallet_holds
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The append-only ledger. `reference` is the business event's unique key, so a replayed event
-- cannot post twice (INSERT … ON CONFLICT (reference) DO NOTHING, then read the first result):
--   recharge:<razorpay payment id>   debit:<wamid>   refund:<razorpay refund id>
--   hold:campaign:<uuid>   release:campaign:<uuid>[:n]   adjustment:<uuid>
CREATE TABLE transactions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet_id         uuid NOT NULL,
    vendor_id         uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('CREDIT_RECHARGE', 'DEBIT_MESSAGE', 'REFUND',
                                                    'HOLD', 'HOLD_RELEASE', 'ADJUSTMENT')),
    amount            numeric(14, 4) NOT NULL,
    hold_delta        numeric(14, 4) NOT NULL DEFAULT 0,
    balance_after     numeric(14, 4) NOT NULL,
    held_after        numeric(14, 4) NOT NULL CHECK (held_after >= 0),
    reference         text NOT NULL CHECK (length(reference) BETWEEN 1 AND 255),
    hold_id           uuid NULL,     -- the hold created / released / captured (consistency kept by the poster)
    campaign_id       uuid NULL,
    wa_message_id     text NULL,
    payment_order_id  uuid NULL,
    description       text NULL,
    -- pricing facts of a debit (meta cost, margin, fx rate, rate card, market, category …)
    metadata          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    created_by        uuid NULL,     -- user behind an ADJUSTMENT
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_reference_key UNIQUE (reference),
    CONSTRAINT transactions_wallet_fkey FOREIGN KEY (wallet_id, vendor_id)
        REFERENCES wallets (id, vendor_id) ON DELETE RESTRICT,
    CONSTRAINT transactions_kind_signs CHECK (CASE kind
        WHEN 'CREDIT_RECHARGE' THEN amount > 0 AND hold_delta = 0
        WHEN 'DEBIT_MESSAGE'   THEN amount <= 0 AND hold_delta <= 0 AND hold_delta >= amount
        WHEN 'REFUND'          THEN amount < 0 AND hold_delta = 0
        WHEN 'HOLD'            THEN amount = 0 AND hold_delta > 0
        WHEN 'HOLD_RELEASE'    THEN amount = 0 AND hold_delta < 0
        WHEN 'ADJUSTMENT'      THEN amount <> 0 AND hold_delta = 0
    END),
    CONSTRAINT transactions_hold_required CHECK (hold_delta = 0 OR hold_id IS NOT NULL)
);
COMMENT ON TABLE transactions IS 'Append-only wallet ledger; see the sign convention in migration 20261121000006 and docs/DATA_MODEL.md.';
CREATE INDEX transactions_vendor_idx ON transactions (vendor_id, id DESC);
-- filter by type without walking every message debit
CREATE INDEX transactions_vendor_non_debit_idx ON transactions (vendor_id, kind, id DESC) WHERE kind <> 'DEBIT_MESSAGE';
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();

-- Razorpay orders for wallet recharges. Statuses mirror Razorpay's order statuses, plus
-- 'creating' (row written before the API call) and our own outcomes.
CREATE TABLE payment_orders (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id              uuid NOT NULL,
    wallet_id              uuid NOT NULL,
    provider               text NOT NULL DEFAULT 'RAZORPAY' CHECK (provider IN ('RAZORPAY')),
    razorpay_order_id      text NULL CHECK (razorpay_order_id LIKE 'order\_%'),
    receipt                text NOT NULL CHECK (length(receipt) BETWEEN 1 AND 40),
    amount                 numeric(14, 4) NOT NULL CHECK (amount > 0),
    amount_paise           bigint NOT NULL CHECK (amount_paise >= 100),
    currency               text NOT NULL DEFAULT 'INR' CHECK (currency ~ '^[A-Z]{3}$'),
    status                 text NOT NULL DEFAULT 'creating'
                           CHECK (status IN ('creating', 'created', 'attempted', 'paid', 'failed',
                                             'refunded', 'partially_refunded', 'mismatch')),
    razorpay_payment_id    text NULL CHECK (razorpay_payment_id LIKE 'pay\_%'),
    idempotency_key        text NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    amount_refunded_paise  bigint NOT NULL DEFAULT 0 CHECK (amount_refunded_paise >= 0),
    failure_code           text NULL,
    failure_reason         text NULL,
    mismatch_detail        jsonb NULL,   -- what differed (amount, currency, order owner …)
    notes                  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(notes) = 'object'),
    created_by             uuid NULL,
    paid_at                timestamptz NULL,
    failed_at              timestamptz NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_orders_razorpay_order_id_key UNIQUE (razorpay_order_id),
    CONSTRAINT payment_orders_razorpay_payment_id_key UNIQUE (razorpay_payment_id),
    CONSTRAINT payment_orders_receipt_key UNIQUE (receipt),
    CONSTRAINT payment_orders_vendor_id_idempotency_key_key UNIQUE (vendor_id, idempotency_key),
    CONSTRAINT payment_orders_wallet_fkey FOREIGN KEY (wallet_id, vendor_id)
        REFERENCES wallets (id, vendor_id) ON DELETE RESTRICT,
    CONSTRAINT payment_orders_created_by_fkey FOREIGN KEY (vendor_id, created_by)
        REFERENCES users (vendor_id, id) ON DELETE RESTRICT,
    CONSTRAINT payment_orders_amount_matches_paise CHECK (amount * 100 = amount_paise),
    CONSTRAINT payment_orders_refund_le_amount CHECK (amount_refunded_paise <= amount_paise),
    CONSTRAINT payment_orders_order_id_required CHECK (status = 'creating' OR razorpay_order_id IS NOT NULL),
    CONSTRAINT payment_orders_paid_has_payment
        CHECK (status NOT IN ('paid', 'refunded', 'partially_refunded') OR razorpay_payment_id IS NOT NULL)
);
CREATE INDEX payment_orders_vendor_created_idx ON payment_orders (vendor_id, created_at DESC, id DESC);
CREATE TRIGGER payment_orders_set_updated_at BEFORE UPDATE ON payment_orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Ledger invariants, for tests and the daily reconciliation. Returns one row per violation
-- (no rows = all good). Pass a wallet id to check one wallet.
CREATE FUNCTION wallet_invariant_violations(p_wallet_id uuid DEFAULT NULL)
    RETURNS TABLE (wallet_id uuid, vendor_id uuid, invariant text, expected numeric, actual numeric)
    LANGUAGE sql STABLE
AS $$
    WITH w AS (
        SELECT * FROM wallets WHERE p_wallet_id IS NULL OR id = p_wallet_id
    ), l AS (
        SELECT t.wallet_id, sum(t.amount) AS s_amount, sum(t.hold_delta) AS s_hold
        FROM transactions t JOIN w ON w.id = t.wallet_id GROUP BY t.wallet_id
    ), last AS (
        SELECT DISTINCT ON (t.wallet_id) t.wallet_id, t.balance_after, t.held_after
        FROM transactions t JOIN w ON w.id = t.wallet_id ORDER BY t.wallet_id, t.id DESC
    ), h AS (
        SELECT hh.wallet_id, sum(hh.remaining) AS s_remaining
        FROM wallet_holds hh JOIN w ON w.id = hh.wallet_id WHERE hh.status = 'ACTIVE' GROUP BY hh.wallet_id
    ), hl AS (
        SELECT hh.id, hh.wallet_id, hh.vendor_id, hh.amount, hh.captured, hh.released,
               coalesce(sum(t.hold_delta) FILTER (WHERE t.kind = 'HOLD'), 0)          AS held_in,
               -coalesce(sum(t.hold_delta) FILTER (WHERE t.kind = 'DEBIT_MESSAGE'), 0) AS captured_out,
               -coalesce(sum(t.hold_delta) FILTER (WHERE t.kind = 'HOLD_RELEASE'), 0)  AS released_out
        FROM wallet_holds hh JOIN w ON w.id = hh.wallet_id
        LEFT JOIN transactions t ON t.hold_id = hh.id AND t.wallet_id = hh.wallet_id
        GROUP BY hh.id
    )
    SELECT w.id, w.vendor_id, 'balance = sum(ledger.amount)', coalesce(l.s_amount, 0), w.balance
      FROM w LEFT JOIN l ON l.wallet_id = w.id WHERE w.balance <> coalesce(l.s_amount, 0)
    UNION ALL
    SELECT w.id, w.vendor_id, 'held = sum(ledger.hold_delta)', coalesce(l.s_hold, 0), w.held
      FROM w LEFT JOIN l ON l.wallet_id = w.id WHERE w.held <> coalesce(l.s_hold, 0)
    UNION ALL
    SELECT w.id, w.vendor_id, 'held = sum(active holds.remaining)', coalesce(h.s_remaining, 0), w.held
      FROM w LEFT JOIN h ON h.wallet_id = w.id WHERE w.held <> coalesce(h.s_remaining, 0)
    UNION ALL
    SELECT w.id, w.vendor_id, 'balance = last ledger row balance_after', last.balance_after, w.balance
      FROM w JOIN last ON last.wallet_id = w.id WHERE w.balance <> last.balance_after
    UNION ALL
    SELECT w.id, w.vendor_id, 'held = last ledger row held_after', last.held_after, w.held
      FROM w JOIN last ON last.wallet_id = w.id WHERE w.held <> last.held_after
    UNION ALL
    SELECT w.id, w.vendor_id, 'held <= balance + overdraft_limit', w.balance + w.overdraft_limit, w.held
      FROM w WHERE w.held > w.balance + w.overdraft_limit
    UNION ALL
    SELECT hl.wallet_id, hl.vendor_id, 'hold ' || hl.id || ': amount = ledger HOLD', hl.held_in, hl.amount
      FROM hl WHERE hl.amount <> hl.held_in
    UNION ALL
    SELECT hl.wallet_id, hl.vendor_id, 'hold ' || hl.id || ': captured = ledger captures', hl.captured_out, hl.captured
      FROM hl WHERE hl.captured <> hl.captured_out
    UNION ALL
    SELECT hl.wallet_id, hl.vendor_id, 'hold ' || hl.id || ': released = ledger releases', hl.released_out, hl.released
      FROM hl WHERE hl.released <> hl.released_out
$$;

-- Row-level security -------------------------------------------------------------------------
-- A tenant transaction may place and release holds (campaign launch / cancel) and read its
-- money; it can never change a balance or post a credit or debit: those are system work
-- (webhook-worker, admin commands) done by the owner role.

ALTER TABLE wallets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON wallets FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT ON wallets TO kloyst_tenant;
GRANT UPDATE (held) ON wallets TO kloyst_tenant;   -- also what SELECT … FOR UPDATE needs

ALTER TABLE wallet_holds ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON wallet_holds FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT ON wallet_holds TO kloyst_tenant;
GRANT UPDATE (released, status, closed_at) ON wallet_holds TO kloyst_tenant;

ALTER TABLE transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON transactions FOR SELECT TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id());
CREATE POLICY tenant_post_holds ON transactions FOR INSERT TO kloyst_tenant
    WITH CHECK (vendor_id = app_current_vendor_id() AND kind IN ('HOLD', 'HOLD_RELEASE'));
GRANT SELECT, INSERT ON transactions TO kloyst_tenant;
GRANT USAGE ON SEQUENCE transactions_id_seq TO kloyst_tenant;

ALTER TABLE payment_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON payment_orders FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON payment_orders TO kloyst_tenant;
