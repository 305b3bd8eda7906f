-- The template submitter counts each WABA's submissions of the last hour (Meta creates at
-- most ~100 templates per WABA per hour) under a per-WABA lock: this index answers it.
CREATE INDEX templates_waba_submitted_idx ON templates (waba_account_id, submitted_at DESC)
    WHERE submitted_at IS NOT NULL;
