-- A send is claimed with a lease: while lease_until is in the future, no other copy of the
-- message calls Twilio. `attempts` is the fencing token of the latest claim. Status `unknown`:
-- a request may have reached Twilio and no outcome is recorded (in flight, an answer lost, a
-- crash before the record); before any resend the sender looks for it in Twilio's Messages list.
ALTER TABLE sender.deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE sender.deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('sending', 'unknown', 'accepted', 'failed', 'cancelled'));
ALTER TABLE sender.deliveries ADD COLUMN lease_until timestamptz;
