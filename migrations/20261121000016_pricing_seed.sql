-- CONFIGURATION, not reference data: the starting values operators are expected to change.
-- Rate card figures are not here (a CSV loaded by `kloyst-admin rate-cards load`).
--
-- The default margin of the SHARED plan on every category: 20 %, no fixed fee. Vendor
-- overrides and category-specific rows are added as further pricing_margins rows.
-- DEDICATED vendors have no default on purpose: their margin is agreed per contract and
-- pricing refuses (NoMargin) until one is configured.
INSERT INTO pricing_margins (plan_type, vendor_id, category, margin_percent, fixed_per_message,
                             currency, effective_from, note)
VALUES ('SHARED', NULL, NULL, 20.0000, 0, 'INR', TIMESTAMPTZ '2026-01-01 00:00:00+00',
        'configuration: default SHARED plan margin (20 %), seeded by migration');

-- The initial USD → INR rate used to convert Meta's USD card to the wallet's currency.
-- A placeholder of the right magnitude; operators insert the treasury rate as a newer row.
INSERT INTO fx_rates (base_currency, quote_currency, rate, effective_from, source)
VALUES ('USD', 'INR', 88.00000000, TIMESTAMPTZ '2026-01-01 00:00:00+00',
        'configuration: initial placeholder rate seeded by migration');
