-- Content templates of every WhatsApp type (#21 item 1): the Twilio content type of each
-- localization (twilio/text, twilio/quick-reply, twilio/list-picker, …) and that type's content
-- (buttons, items, media) for agents to see.
ALTER TABLE session.template_localizations
    ADD COLUMN content_type text NOT NULL DEFAULT 'twilio/text',
    ADD COLUMN content jsonb;
