-- The desk's open queue in priority order (more serious grade first, then the nearest deadline,
-- none last, then the newest), read from an index in that order so that a page of 200 out of
-- 40,000 open orders reads 200 entries instead of sorting them all; the count of the open queue
-- reads this index alone. Open, unquarantined orders only: closing an order takes it out. The
-- expressions are the ones `store/queue.rs` orders by (`grade_rank`, `deadline_key`; a test
-- holds them equal).
CREATE INDEX orders_open_priority ON orders (
    org_id,
    (CASE grade WHEN 'minor' THEN 0 WHEN 'serious' THEN 1 WHEN 'severe' THEN 2 WHEN 'critical' THEN 3 ELSE 0 END) DESC,
    (COALESCE(next_deadline, 9223372036854775807)),
    created_at DESC,
    id,
    project
) WHERE is_open = TRUE AND quarantined_at IS NULL;
-- The count of a queue (`X-Total-Count`) over the open orders reads this index alone: it holds
-- the quarantine mark as well (a row's last column lies past its document).
DROP INDEX orders_deadline;
CREATE INDEX orders_deadline ON orders (org_id, is_open, next_deadline, quarantined_at);
-- The queue's search (`q`): numbers and units matched over a narrow index instead of the orders'
-- rows, callers and residents found by their whole name or number.
CREATE INDEX orders_numbers ON orders (org_id, number, unit, id);
CREATE INDEX order_callers_phone ON order_callers (org_id, phone);
CREATE INDEX order_callers_name ON order_callers (org_id, name);
CREATE INDEX estate_residents_name ON estate_residents (org_id, name);
