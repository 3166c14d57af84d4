-- A push reads the newest feed position of one order; without this it scanned the feed.
CREATE INDEX feed_order_seq ON feed (order_id, seq);
