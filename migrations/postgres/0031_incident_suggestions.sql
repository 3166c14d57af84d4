-- An incident's member orders stand as `member` (the incident's, covered, marked on the phones),
-- `suggested` (a later report the detector was not sure enough of: docs/incidents.md, the
-- dispatcher decides) or `dismissed` (the dispatcher said it is not the incident's: it stays out
-- of it, and out of the next surge's count).
ALTER TABLE incident_members ADD COLUMN standing TEXT NOT NULL DEFAULT 'member';
