-- One-time sign-in codes sent by text message (POST /api/v1/login/code): the code's HMAC under
-- the database's secret, never the code. A code lives 5 minutes and takes 5 wrong tries; rows
-- older than a day are deleted when the next code is asked for (the phone is personal data).
CREATE TABLE login_codes (
    id TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT
);
CREATE INDEX login_codes_phone ON login_codes (phone, created_at);
CREATE INDEX login_codes_created ON login_codes (created_at);
-- Who a number signs in, in any organization: owners' accounts, then the register's residents.
CREATE INDEX users_phone ON users (phone);
CREATE INDEX estate_residents_by_phone ON estate_residents (phone);
