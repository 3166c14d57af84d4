-- Outgoing webhooks: each organization's endpoints with their signing secrets, and a durable
-- outbox of deliveries (written in the same transaction as the event it announces; retried with
-- backoff until delivered, at least once).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);

CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id),
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
