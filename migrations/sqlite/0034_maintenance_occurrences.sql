-- Each occurrence of a preventive plan whose work order the server makes (docs/maintenance.md).
-- Its key (`pm:{plan}:{date}`) is unique in the organization: of several replicas, one
-- reserves it and makes its order, once; a reservation whose order was not made (its process
-- died) is made by the next pass, under the same order id.
CREATE TABLE maintenance_occurrences (
    org_id TEXT NOT NULL,
    occurrence_key TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    -- Civil dates, YYYY-MM-DD: the rule's date, the day it is due, the day its order is issued.
    nominal TEXT NOT NULL,
    due TEXT NOT NULL,
    issue_on TEXT NOT NULL,
    order_id TEXT NOT NULL,
    reserved_at INTEGER NOT NULL,
    -- NULL until the order is made.
    made_at INTEGER,
    -- The day its order was completed (YYYY-MM-DD, China Standard Time), once it is.
    done TEXT,
    PRIMARY KEY (org_id, occurrence_key)
);
CREATE INDEX maintenance_occurrences_plan ON maintenance_occurrences (org_id, plan_id, nominal);
CREATE INDEX maintenance_occurrences_asset ON maintenance_occurrences (org_id, asset_id, nominal);
CREATE UNIQUE INDEX maintenance_occurrences_order ON maintenance_occurrences (order_id);
