-- A push reads the newest feed position of one order; without this it scanned the feed.
CREATE INDEX feed_order_seq ON feed (order_id, seq);
-- A technician's or owner's pull first finds the orders that changed since its cursor.
CREATE INDEX orders_assignee_changed ON orders (org_id, assignee, last_seq);
CREATE INDEX orders_changed ON orders (org_id, last_seq);
