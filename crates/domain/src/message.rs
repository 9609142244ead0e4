//! What a transcript entry is and who wrote it, as stored and as carried on the bus: closed sets,
//! so a value outside them is an error where it is read, never a guess.

use serde::{Deserialize, Serialize};

use crate::policy::Author;

/// Declares `as_str`/`parse` for a fieldless enum of stored names, and, with the `sqlx`
/// feature, binds and decodes it as Postgres `text` (an unknown stored name fails the read).
macro_rules! text_enum {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Parses a stored or wire name.
            pub fn parse(name: &str) -> Result<Self, String> {
                match name {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!(concat!($what, " {:?} is none of: ", $($text, " "),+), other)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        crate::sql_text::sql_text!($name, |text| Self::parse(text));
    };
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// To the customer.
    Outbound,
    /// A note in the transcript, sent to no one.
    Note,
}

text_enum!(Direction, "direction", { Inbound => "inbound", Outbound => "outbound", Note => "note" });

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    /// The customer, through WhatsApp.
    Customer,
    /// A human agent.
    Agent,
    /// A bot on the workstream.
    Bot,
    /// An automated message or survey.
    Automated,
    /// Switchboard itself (a note such as a window warning).
    System,
}

text_enum!(AuthorKind, "author_kind", {
    Customer => "customer",
    Agent => "agent",
    Bot => "bot",
    Automated => "automated",
    System => "system",
});

impl From<Author> for AuthorKind {
    fn from(author: Author) -> Self {
        match author {
            Author::Agent => Self::Agent,
            Author::Bot => Self::Bot,
            Author::Automated => Self::Automated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_one_is_an_error_naming_the_choices() {
        for kind in [
            AuthorKind::Customer,
            AuthorKind::Agent,
            AuthorKind::Bot,
            AuthorKind::Automated,
            AuthorKind::System,
        ] {
            assert_eq!(AuthorKind::parse(kind.as_str()), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for direction in [Direction::Inbound, Direction::Outbound, Direction::Note] {
            assert_eq!(Direction::parse(&direction.to_string()), Ok(direction));
        }
        let unknown = AuthorKind::parse("robot").unwrap_err();
        assert!(
            unknown.contains("\"robot\"") && unknown.contains("customer") && unknown.contains("system"),
            "{unknown}"
        );
        assert!(Direction::parse("").is_err());
        assert_eq!(AuthorKind::from(Author::Bot), AuthorKind::Bot);
    }
}
