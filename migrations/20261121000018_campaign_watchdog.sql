-- The watchdog's re-plan is stamped apart from progress: re-planning a campaign that never
-- moves must not look like progress, or it would be re-planned forever instead of FAILED
-- (WATCHDOG_TIMEOUT) after CAMPAIGN_WATCHDOG_FAIL_AFTER.
ALTER TABLE campaigns ADD COLUMN replanned_at timestamptz NULL;   -- last re-plan by the watchdog
