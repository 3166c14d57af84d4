-- Registrations sent again with the same `Idempotency-Key` (a client retrying after a cut
-- response) answer with the order the first one made, instead of making a second. One row per
-- user and key; `request` is a hash of the registration, so that a key reused for another
-- registration is refused.
CREATE TABLE idempotency_keys (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    order_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
