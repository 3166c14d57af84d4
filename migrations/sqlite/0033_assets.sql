-- The asset register (设备台账, docs/maintenance.md): equipment at a place of a project (3号电梯,
-- 水泵房2号泵, 消防主机), and each one's preventive maintenance plans (sync-core's
-- `maintenance`: a recurrence rule, the longest gap between services, a lead time, a
-- checklist). Rows of the organization, kept by supervisors on the desk.
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    project TEXT NOT NULL,
    -- NULL: a place of the whole project (the pump room, the gate).
    building TEXT,
    place TEXT NOT NULL,
    name TEXT NOT NULL,
    -- elevator, water_pump, water_tank, fire_system, power, gate, other (sync-core's AssetType).
    asset_type TEXT NOT NULL,
    make TEXT NOT NULL,
    -- Civil dates, YYYY-MM-DD.
    installed_on TEXT,
    inspection_due_on TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (org_id, project, name)
);
CREATE INDEX assets_project ON assets (org_id, project);

CREATE TABLE maintenance_plans (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    asset_id TEXT NOT NULL REFERENCES assets (id),
    -- An RFC 5545 RRULE without DTSTART, from `starts_on`.
    rule TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    max_gap_days INTEGER NOT NULL,
    lead_days INTEGER NOT NULL,
    -- A JSON array of the checklist's items.
    checklist TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX maintenance_plans_asset ON maintenance_plans (asset_id);
