-- Every push moves its order's feed position (last_seq). While last_seq was indexed, each such
-- update wrote a new entry into every index of orders; without those indexes PostgreSQL updates
-- the row in place on its page (a HOT update) and touches no index. The pulls that used them
-- find a device's orders by assignee, unit or project first, then their positions.
DROP INDEX orders_assignee_changed;
DROP INDEX orders_changed;
-- Room on each page for the row's next version, so that the update can stay on the page.
ALTER TABLE orders SET (fillfactor = 85);
