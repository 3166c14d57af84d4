-- The queue's description column and search, and why an order on hold waits: each order's
-- description and current hold reason as the scanner last read them from the document (written
-- with the order's facts; every order passes the scanner once).
-- And the desk's saved views: a user's named filters of the queue.
CREATE TABLE order_texts (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    description TEXT NOT NULL,
    hold_reason TEXT
);
UPDATE orders SET next_check = 0;

CREATE TABLE saved_views (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The queue's query string (`status=open&grade=severe`), as the desk's URL carries it.
    query TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, name)
);
