-- Who may close an order of each grade (投诉分级与处理权限), per organization. A grade without
-- a row uses the default (sync_core::authority::ClosingAuthority::default).
CREATE TABLE closing_authority (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    grade TEXT NOT NULL,
    min_role TEXT NOT NULL,
    PRIMARY KEY (org_id, grade)
);
