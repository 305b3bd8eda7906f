-- WhatsApp message templates, submitted to Meta under a per-vendor unique name.

CREATE TABLE templates (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id          uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    -- WABA the template was submitted to (NULL until submitted; the shared WABA for SHARED vendors)
    waba_account_id    uuid NULL REFERENCES waba_accounts (id) ON DELETE RESTRICT,
    name               text NOT NULL CHECK (name ~ '^[a-z0-9_]+$' AND length(name) <= 512),
    language           text NOT NULL CHECK (language ~ '^[a-z]{2,3}([_-][A-Za-z0-9]{2,4})?$'),
    category           text NOT NULL CHECK (category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION')),
    -- category Meta assigned (it may re-categorise; that changes the price)
    meta_category      text NULL CHECK (meta_category IN ('MARKETING', 'UTILITY', 'AUTHENTICATION')),
    parameter_format   text NOT NULL DEFAULT 'POSITIONAL' CHECK (parameter_format IN ('POSITIONAL', 'NAMED')),
    components         jsonb NOT NULL CHECK (jsonb_typeof(components) = 'array' AND jsonb_array_length(components) > 0),
    -- number of body placeholders {{1}}..{{n}} (validated by the application)
    param_count        smallint NOT NULL DEFAULT 0 CHECK (param_count BETWEEN 0 AND 100),
    -- name sent to Meta: unique under the shared WABA (vendor-prefixed); the mapping is this row
    meta_name          text NOT NULL CHECK (meta_name ~ '^[a-z0-9_]+$' AND length(meta_name) <= 512),
    meta_template_id   text NULL CHECK (length(meta_template_id) BETWEEN 1 AND 64),   -- Meta's id (an integer in webhooks)
    status             text NOT NULL DEFAULT 'PENDING' CHECK (status IN (
                           'PENDING',          -- saved; submitted_at NULL = not yet sent to Meta, else in review
                           'SUBMIT_FAILED',    -- Meta refused the creation call (see last_submit_error)
                           'APPROVED', 'REJECTED', 'PAUSED', 'DISABLED',
                           'IN_APPEAL', 'FLAGGED', 'LIMIT_EXCEEDED', 'LOCKED',
                           'PENDING_DELETION', 'DELETED', 'ARCHIVED')),
    meta_status        text NULL,           -- last raw event name from Meta (e.g. REINSTATED)
    rejection_reason   text NULL,           -- Meta's reason code (INVALID_FORMAT, PROMOTIONAL, ...)
    rejection_info     jsonb NULL,          -- Meta's rejection_info {reason, recommendation}
    quality_rating     text NULL,
    submitted_at       timestamptz NULL,
    submit_attempts    integer NOT NULL DEFAULT 0 CHECK (submit_attempts >= 0),
    last_submit_error  text NULL,
    -- time of the Meta event last applied: an older event never overwrites a newer one
    status_changed_at  timestamptz NULL,
    created_by         uuid NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_vendor_id_name_language_key UNIQUE (vendor_id, name, language),
    CONSTRAINT templates_meta_name_language_key UNIQUE (meta_name, language),
    CONSTRAINT templates_meta_template_id_key UNIQUE (meta_template_id),
    CONSTRAINT templates_vendor_id_id_key UNIQUE (vendor_id, id),
    CONSTRAINT templates_created_by_fkey FOREIGN KEY (vendor_id, created_by)
        REFERENCES users (vendor_id, id) ON DELETE RESTRICT
);
CREATE INDEX templates_vendor_created_idx ON templates (vendor_id, created_at DESC, id DESC);
-- the submitter's queue: saved templates not yet sent to Meta (oldest first)
CREATE INDEX templates_submit_queue_idx ON templates (created_at) WHERE status = 'PENDING' AND submitted_at IS NULL;
CREATE TRIGGER templates_set_updated_at BEFORE UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE templates ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON templates FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON templates TO kloyst_tenant;
