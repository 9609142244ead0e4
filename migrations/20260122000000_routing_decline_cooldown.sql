-- When each agent last declined or missed the item, for the workstream's decline cool-down.
ALTER TABLE routing.work_items ADD COLUMN declined_at jsonb NOT NULL DEFAULT '{}'::jsonb;
