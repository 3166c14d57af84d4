-- Loopwork server schema on SQLite (the embedded default). Append-only: add a new file to change it.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE projects (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (org_id, code)
);

-- Personal data (name, phone) lives here and only here.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    display_name TEXT NOT NULL,
    phone TEXT,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
);

CREATE TABLE owner_units (
    user_id TEXT NOT NULL REFERENCES users (id),
    project TEXT NOT NULL,
    building TEXT NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (user_id, project, building, unit)
);
CREATE INDEX owner_units_unit ON owner_units (project, building, unit);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_sync_at INTEGER,
    revoked_at INTEGER
);

-- One row per work order: the document and the fields queries need, materialized.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    assignee TEXT,
    reporter TEXT NOT NULL,
    project TEXT NOT NULL,
    building TEXT,
    unit TEXT,
    area TEXT,
    created_at INTEGER NOT NULL,
    next_deadline INTEGER,
    doc BLOB NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE INDEX orders_assignee ON orders (org_id, assignee);
CREATE INDEX orders_unit ON orders (org_id, project, building, unit);
CREATE INDEX orders_reporter ON orders (org_id, reporter);
CREATE INDEX orders_deadline ON orders (org_id, is_open, next_deadline);

-- The append-only log devices sync from: changes, and access grants and revocations.
CREATE TABLE feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    hash BLOB,
    bytes BLOB,
    user_id TEXT,
    reason TEXT,
    device_id TEXT,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX feed_change ON feed (order_id, hash) WHERE kind = 'change';
CREATE INDEX feed_org_seq ON feed (org_id, seq);
CREATE INDEX feed_user ON feed (user_id, seq) WHERE user_id IS NOT NULL;

-- Who has ever been given an order: a reassigned technician's offline work is still accepted.
CREATE TABLE order_access (
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (order_id, user_id)
);

CREATE TABLE number_counters (
    org_id TEXT NOT NULL,
    day TEXT NOT NULL,
    next INTEGER NOT NULL,
    PRIMARY KEY (org_id, day)
);
