-- Closed loop (闭环): since when (server time) an order has awaited its owner's confirmation, so
-- the scanner finds the unanswered ones by index; and each organization's wait before it
-- confirms for the owner.
ALTER TABLE orders ADD COLUMN awaiting_since BIGINT;
UPDATE orders SET awaiting_since = (SELECT MAX(f.received_at) FROM feed f WHERE f.order_id = orders.id)
    WHERE status = 'awaiting_confirmation';
CREATE INDEX orders_awaiting ON orders (awaiting_since) WHERE awaiting_since IS NOT NULL;

CREATE TABLE closed_loop_settings (
    org_id TEXT PRIMARY KEY REFERENCES organizations (id),
    auto_confirm_days INTEGER NOT NULL
);
