-- An order whose stored history does not load (a change stored under another hash than the one
-- its successors depend on, damaged bytes) is set aside: no device is sent it, staff routes
-- answer 409 `order_quarantined`, and an administrator repairs it. Found by the check at start-up
-- (`check_stored`) or by any reader that fails to load it.
ALTER TABLE orders ADD COLUMN quarantined_at BIGINT;
ALTER TABLE orders ADD COLUMN quarantine_reason TEXT;
CREATE INDEX orders_quarantined ON orders (id) WHERE quarantined_at IS NOT NULL;
