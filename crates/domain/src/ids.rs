//! Typed ids: one newtype per kind of thing, so a queue id cannot be passed where an agent id is
//! expected. Each wraps a UUID, reads and writes as its plain hyphenated text in JSON (the wire
//! format is unchanged), and, with the `sqlx` feature, binds and decodes as a Postgres `uuid`.
//! Ids that are not UUIDs (a signing key's name, a client's idempotency key) get a text newtype.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        pub struct $name(Uuid);

        impl $name {
            /// A new id, time-ordered (UUID v7) like every id Switchboard mints.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The UUID inside.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(raw).map(Self)
            }
        }
    )*};
}

uuid_ids! {
    /// A Twilio account connected to Switchboard.
    ChannelId;
    /// A WhatsApp number of a channel.
    NumberId;
    /// A customer.
    CustomerId;
    /// A conversation.
    ConversationId;
    /// A message of a conversation.
    MessageId;
    /// An agent.
    AgentId;
    /// A queue.
    QueueId;
    /// A workstream.
    WorkstreamId;
    /// A routing offer.
    OfferId;
    /// A message template.
    TemplateId;
    /// A file an agent uploaded.
    FileId;
    /// A bot.
    BotId;
    /// One turn of a bot conversation (the same on every attempt of the call).
    TurnId;
    /// An API key.
    ApiKeyId;
}

macro_rules! text_ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether it is empty (none was given).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

text_ids! {
    /// The name of a signing key among the configured ones (`k1`, …).
    SigningKeyId;
    /// A client's own id for one send: repeating a send with it sends once.
    ClientMessageId;
    /// A template named by its id or by its name (either is accepted where one is sent).
    TemplateRef;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_uuid_on_the_wire_and_in_text() {
        let raw = "0192f000-0000-7000-8000-000000000001";
        let id: ConversationId = raw.parse().expect("a UUID");
        assert_eq!(id.to_string(), raw);
        assert_eq!(serde_json::to_value(id).expect("serializes"), serde_json::json!(raw));
        let back: ConversationId = serde_json::from_value(serde_json::json!(raw)).expect("deserializes");
        assert_eq!(back, id);
        assert!("nope".parse::<AgentId>().is_err());
        assert!(serde_json::from_value::<AgentId>(serde_json::json!("nope")).is_err());
        assert_ne!(QueueId::generate(), QueueId::generate());
        let key = SigningKeyId::from("k1");
        assert_eq!(
            (key.as_str(), serde_json::to_value(&key).expect("serializes")),
            ("k1", serde_json::json!("k1"))
        );
    }
}
