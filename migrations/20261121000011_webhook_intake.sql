-- Meta delivery statuses, parsed out of webhook_inbox rows and stored ready to be applied to
-- message_logs (the delivery-status issue applies them and sets applied_at). One row per
-- (wamid, status): Meta's duplicate deliveries, in the same POST or another one, collapse here.
-- System-only (the vendor is known only once the wamid is matched to its message).
CREATE TABLE message_status_events (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox_id             bigint NOT NULL,      -- webhook_inbox row it came from (no FK: inbox rows are pruned)
    waba_id              text NOT NULL,
    phone_number_id      text NULL,
    wa_message_id        text NOT NULL CHECK (length(wa_message_id) BETWEEN 1 AND 255),
    status               text NOT NULL CHECK (status ~ '^[A-Z0-9_]{1,32}$'),   -- SENT, DELIVERED, READ, FAILED, PLAYED …
    status_at            timestamptz NOT NULL,                                   -- Meta's timestamp
    recipient_id         text NULL,
    recipient_user_id    text NULL,
    pricing_model        text NULL,            -- PMP, CBP (as Meta sent it)
    pricing_category     text NULL,            -- normalised: MARKETING, AUTHENTICATION_INTERNATIONAL …
    pricing_type         text NULL,            -- regular, free_customer_service, free_entry_point
    billable             boolean NULL,
    conversation_id      text NULL,
    conversation_origin  text NULL,
    error_code           integer NULL,         -- first of errors[] (all of them are in payload)
    error_title          text NULL,
    payload              jsonb NOT NULL,       -- the status object as Meta sent it
    received_at          timestamptz NOT NULL DEFAULT now(),
    applied_at           timestamptz NULL,
    CONSTRAINT message_status_events_wamid_status_key UNIQUE (wa_message_id, status)
);
-- the applier's queue: statuses not applied yet, oldest first
CREATE INDEX message_status_events_unapplied_idx ON message_status_events (id) WHERE applied_at IS NULL;

-- Inbox rows by source for the dead-letter listing filter.
CREATE INDEX webhook_inbox_dead_source_idx ON webhook_inbox (source, dead_at DESC, id DESC) WHERE state = 'DEAD';
