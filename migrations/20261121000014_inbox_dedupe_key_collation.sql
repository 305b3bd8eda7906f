-- The inbox's duplicate-delivery key is an opaque identifier ("meta:sha256:<hex>",
-- "razorpay:<event id>"): compare it bytewise. Under the database's linguistic collation
-- every insert's unique-index probe paid for strcoll (measured in the intake benchmark).
ALTER TABLE webhook_inbox ALTER COLUMN dedupe_key TYPE text COLLATE "C";
