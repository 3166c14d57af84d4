-- The graded response of incidents and the watch on the service standard (docs/incidents.md).
-- Each level an incident reached, once: the notifications and webhooks of that level were sent
-- in the transaction that inserted the row.
CREATE TABLE incident_alerts (
    org_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    level TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (org_id, number, level)
);
-- An incident's notices to owners (停水通知), newest last: the text a dispatcher wrote and the
-- time service is expected back.
CREATE TABLE incident_notices (
    org_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    body TEXT NOT NULL,
    expected_at BIGINT,
    by_user TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (org_id, number, seq)
);
-- An episode of a deviation from the service standard: a measure of one scope (a project, or a
-- project's category) below its target from `opened_at` until it recovers (`closed_at`). One
-- open episode per measure and scope.
CREATE TABLE deviation_episodes (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    measure TEXT NOT NULL,
    project TEXT NOT NULL,
    category TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    opened_value_permille BIGINT NOT NULL,
    opened_orders BIGINT NOT NULL,
    worst_value_permille BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE UNIQUE INDEX deviation_episodes_open ON deviation_episodes (org_id, measure, project, category)
    WHERE closed_at IS NULL;
CREATE INDEX deviation_episodes_org ON deviation_episodes (org_id, opened_at);
-- What a notification is about when it is not an order's deadline: an incident's number, or a
-- deviation's scope.
ALTER TABLE notifications ADD COLUMN subject TEXT;
-- A checkpoint that passed while its order was covered by its incident: recorded, not told.
ALTER TABLE sla_events ADD COLUMN covered BOOLEAN NOT NULL DEFAULT FALSE;
