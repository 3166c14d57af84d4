-- Escalation: when the scanner must look at an order next (set to the push time by every push,
-- then to the order's next checkpoint by the scanner), every warning and breach that fired (never
-- cleared), and each user's notification feed.
ALTER TABLE orders ADD COLUMN next_check BIGINT;
UPDATE orders SET next_check = 0 WHERE is_open = TRUE;
CREATE INDEX orders_next_check ON orders (next_check) WHERE next_check IS NOT NULL;

CREATE TABLE sla_events (
    org_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    level TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    at BIGINT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, stage, level, due_at)
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    level TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
