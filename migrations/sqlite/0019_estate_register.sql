-- The estate register (房屋档案): each project's units, by building, and the people who live in
-- them. A project with units here has its registrations checked against them (an unknown unit
-- is refused); one with none takes any unit. Names and phones are personal data: the desk reads
-- them through `store/estate.rs` (phones masked, each reveal logged in `resident_reveals`), an
-- erasure deletes the resident's row, and no order's document holds either.
CREATE TABLE estate_units (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    project TEXT NOT NULL,
    building TEXT NOT NULL,
    unit TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, project, building, unit)
);
CREATE INDEX estate_units_unit ON estate_units (org_id, project, unit);

CREATE TABLE estate_residents (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    project TEXT NOT NULL,
    building TEXT NOT NULL,
    unit TEXT NOT NULL,
    name TEXT NOT NULL,
    -- Digits only, no country code (sync-core's `estate::normalize_phone`).
    phone TEXT NOT NULL,
    relation TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    FOREIGN KEY (org_id, project, building, unit) REFERENCES estate_units (org_id, project, building, unit),
    UNIQUE (org_id, project, building, unit, phone)
);
CREATE INDEX estate_residents_phone ON estate_residents (org_id, phone);

-- Every time someone saw a resident's full phone number from the register.
CREATE TABLE resident_reveals (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    resident_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    revealed_at INTEGER NOT NULL
);
CREATE INDEX resident_reveals_resident ON resident_reveals (resident_id, revealed_at);
