-- Escalation: when the scanner must look at an order next (set to the push time by every push,
-- then to the order's next checkpoint by the scanner), every warning and breach that fired (never
-- cleared), and each user's notification feed.
ALTER TABLE orders ADD COLUMN next_check INTEGER;
UPDATE orders SET next_check = 0 WHERE is_open = 1;
CREATE INDEX orders_next_check ON orders (next_check) WHERE next_check IS NOT NULL;

CREATE TABLE sla_events (
    org_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    level TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    at INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    PRIMARY KEY (order_id, stage, level, due_at)
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    level TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    read_at INTEGER
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
