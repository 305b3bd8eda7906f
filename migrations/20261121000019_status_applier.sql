-- The status applier (kloyst_delivery::StatusApplier): statuses are parked in
-- message_status_events itself while their message log does not exist yet (the webhook raced
-- the send's commit), retried with backoff, and dead-lettered with a reason after
-- STATUS_PARK_TIMEOUT. Never dropped: a dead row keeps its payload for an operator.
ALTER TABLE message_status_events
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN next_attempt_at  timestamptz NULL,      -- NULL = due now
    ADD COLUMN dead_at          timestamptz NULL,
    ADD COLUMN dead_reason      text NULL,
    ADD CONSTRAINT message_status_events_dead_has_reason CHECK ((dead_at IS NULL) = (dead_reason IS NULL)),
    ADD CONSTRAINT message_status_events_applied_or_dead CHECK (applied_at IS NULL OR dead_at IS NULL);

-- The applier's queue: unapplied, not dead, oldest first (it claims ORDER BY id and skips rows
-- whose next_attempt_at is in the future; parked rows are few). Replaces the index of 000011,
-- which would keep dead rows forever.
DROP INDEX message_status_events_unapplied_idx;
CREATE INDEX message_status_events_due_idx ON message_status_events (id)
    WHERE applied_at IS NULL AND dead_at IS NULL;
-- Dead letters, newest first, for operators.
CREATE INDEX message_status_events_dead_idx ON message_status_events (dead_at DESC, id DESC)
    WHERE dead_at IS NOT NULL;

-- Which status's pricing object the log's pricing facts came from: the fold prefers a billable
-- object, then the earliest status (SENT < DELIVERED < READ < FAILED), so the facts are the same
-- whatever order the webhooks arrive in.
ALTER TABLE message_logs
    ADD COLUMN pricing_status text NULL CHECK (pricing_status IN ('SENT', 'DELIVERED', 'READ', 'FAILED'));

-- Parking happens in message_status_events (above); this table was never used.
DROP TABLE parked_statuses;
