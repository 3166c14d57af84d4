-- Each organization's SLA calendars and policies, as the JSON of `PUT /api/v1/settings/sla`.
-- An organization without a row uses the seeded defaults.
CREATE TABLE sla_books (
    org_id TEXT PRIMARY KEY REFERENCES organizations (id),
    book TEXT NOT NULL
);
