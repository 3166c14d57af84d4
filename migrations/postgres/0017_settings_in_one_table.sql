-- Every organization setting in one table, by name, as JSON (`crate::settings`): the closing
-- authority, the SLA book and the closed-loop wait join the escalation chain and the webhook
-- destinations in `org_settings`, under the names of their routes (`/api/v1/settings/{name}`).
INSERT INTO org_settings (org_id, name, value)
    SELECT org_id, 'closing-authority', json_build_object(
        'minor', COALESCE(MAX(CASE WHEN grade = 'minor' THEN min_role END), 'dispatcher'),
        'serious', COALESCE(MAX(CASE WHEN grade = 'serious' THEN min_role END), 'supervisor'),
        'severe', COALESCE(MAX(CASE WHEN grade = 'severe' THEN min_role END), 'manager'),
        'critical', COALESCE(MAX(CASE WHEN grade = 'critical' THEN min_role END), 'manager'))
    ::text FROM closing_authority GROUP BY org_id;
INSERT INTO org_settings (org_id, name, value) SELECT org_id, 'sla', book FROM sla_books;
INSERT INTO org_settings (org_id, name, value)
    SELECT org_id, 'closed-loop', json_build_object('auto_confirm_days', auto_confirm_days)::text FROM closed_loop_settings;
UPDATE org_settings SET name = 'escalation' WHERE name = 'escalation_chain';
UPDATE org_settings SET name = 'webhook-destinations' WHERE name = 'webhook_destinations';
DROP TABLE closing_authority;
DROP TABLE sla_books;
DROP TABLE closed_loop_settings;
