-- The delivery-status path under load (Meta posts up to 1,000 statuses per request, and a
-- campaign's statuses arrive for days).

-- Webhook bodies (~250 KB for 1,000 statuses) are compressed by TOAST when stored and
-- decompressed when processed. pglz, the default, cost several ms of CPU per large body on the
-- acknowledgement path; lz4 compresses a JSON body about as well at a fraction of the CPU.
-- Existing values stay pglz and remain readable (the method is recorded per value).
ALTER TABLE webhook_inbox ALTER COLUMN raw_body SET COMPRESSION lz4;

-- A message log is updated by every status it receives (SENT, DELIVERED, READ, the charge).
-- With `status` in an index, each of those updates wrote a new entry into all seven indexes of
-- the table; without it, and with room left on each page, the update is HOT (heap-only: no
-- index entry at all). The campaign's message list and the settlement find a campaign's logs by
-- (campaign_id, id) and filter the status on the rows.
DROP INDEX message_logs_campaign_status_idx;
CREATE INDEX message_logs_campaign_idx ON message_logs (campaign_id, id) WHERE campaign_id IS NOT NULL;
-- Room on each page for the updated versions of its rows (new pages; an existing table keeps
-- its packed pages until rewritten).
ALTER TABLE message_logs SET (fillfactor = 80);
