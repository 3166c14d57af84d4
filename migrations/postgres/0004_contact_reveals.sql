-- Every time someone saw an owner's full phone number (个人信息保护): who, from which device,
-- for which order, when.
CREATE TABLE contact_reveals (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    revealed_at BIGINT NOT NULL
);
CREATE INDEX contact_reveals_order ON contact_reveals (order_id, revealed_at);
