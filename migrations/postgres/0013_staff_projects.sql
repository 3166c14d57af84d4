-- The projects (小区) a dispatcher serves. A dispatcher with rows here receives, lists and may
-- write only those projects' orders; one with none serves every project of the organization
-- (the company's call centre). Supervisors and above always see the whole organization.
CREATE TABLE staff_projects (
    user_id TEXT NOT NULL REFERENCES users (id),
    project TEXT NOT NULL,
    PRIMARY KEY (user_id, project)
);
CREATE INDEX staff_projects_project ON staff_projects (project, user_id);
