//! Attribute and metric names, in one place so dashboards and code agree.
//! OpenTelemetry semantic-convention names are used where one exists.

/// `messaging.system` value for RabbitMQ.
pub const MESSAGING_SYSTEM_RABBITMQ: &str = "rabbitmq";
/// The conversation a span or log line is about.
pub const CONVERSATION_ID: &str = "conversation_id";
/// The Twilio channel (account) a webhook came in on.
pub const CHANNEL_ID: &str = "channel_id";
/// Twilio's MessageSid.
pub const MESSAGE_SID: &str = "message_sid";

/// HTTP server request duration (seconds), per the HTTP semantic conventions.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http.server.request.duration";
/// gRPC server call duration (seconds), per the RPC semantic conventions.
pub const RPC_SERVER_DURATION: &str = "rpc.server.duration";
/// Messages published, per the messaging semantic conventions.
pub const MESSAGING_CLIENT_SENT_MESSAGES: &str = "messaging.client.sent.messages";
/// Messages consumed, per the messaging semantic conventions.
pub const MESSAGING_CLIENT_CONSUMED_MESSAGES: &str = "messaging.client.consumed.messages";
/// Time to process one consumed message (seconds).
pub const MESSAGING_PROCESS_DURATION: &str = "messaging.process.duration";
/// Time from publish to broker confirm (seconds).
pub const SWITCHBOARD_PUBLISH_CONFIRM_DURATION: &str = "switchboard.bus.publish_confirm.duration";
/// Messages sent to a dead-letter queue.
pub const SWITCHBOARD_DEAD_LETTERED: &str = "switchboard.bus.dead_lettered";
/// Age of a message when its consumer started on it (seconds): the consumer lag.
pub const SWITCHBOARD_CONSUMER_LAG: &str = "switchboard.bus.consumer.lag";
/// Outbox rows published by the relay.
pub const SWITCHBOARD_OUTBOX_PUBLISHED: &str = "switchboard.outbox.published";
/// Which Switchboard service a span belongs to (`session`, `routing`, …): in the all-in-one
/// `switchboard dev` every span shares one `service.name`, and this still tells them apart.
pub const SWITCHBOARD_SERVICE: &str = "switchboard.service";
