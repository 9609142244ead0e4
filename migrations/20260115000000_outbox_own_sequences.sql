-- routing.outbox and sender.outbox were made `LIKE session.outbox INCLUDING ALL`, which copied
-- the default `nextval('session.outbox_id_seq')`: routing and sender took their outbox ids from
-- session's schema, so a role limited to its own schema could not write its own outbox (found
-- when the services first ran on such roles). Each outbox gets its own sequence, started past
-- every id the shared one ever gave, so ids keep increasing in each table.
CREATE SEQUENCE routing.outbox_id_seq OWNED BY routing.outbox.id;
SELECT setval('routing.outbox_id_seq', (SELECT last_value FROM session.outbox_id_seq));
ALTER TABLE routing.outbox ALTER COLUMN id SET DEFAULT nextval('routing.outbox_id_seq');

CREATE SEQUENCE sender.outbox_id_seq OWNED BY sender.outbox.id;
SELECT setval('sender.outbox_id_seq', (SELECT last_value FROM session.outbox_id_seq));
ALTER TABLE sender.outbox ALTER COLUMN id SET DEFAULT nextval('sender.outbox_id_seq');
