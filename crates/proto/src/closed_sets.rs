//! The closed sets that cross the wire as proto enums (conversation status, message direction
//! and author kind, presence, offer and item states): converted to and from `domain`'s, and read
//! the rolling-update way. During an update a message carries each set twice, as its typed
//! `*_code` field and as its older text field; a sender fills both (`From` and `as_str`), and
//! [`read`] takes the code when the sender set it and the text otherwise, so a replica of either
//! version understands the other.

use crate::routing::v1 as rpb;
use crate::session::v1 as spb;

/// The domain's types, under one path the macro can name.
mod d {
    pub use switchboard_domain::conversation::ConversationStatus;
    pub use switchboard_domain::message::{AuthorKind, Direction};
    pub use switchboard_domain::policy::Author;
    pub use switchboard_domain::routing::Presence;
    pub use switchboard_domain::routing::offer::{ItemState, OfferState};
}

/// A domain closed set with a proto enum.
pub trait WireEnum: Sized + Copy {
    /// The proto enum's number, for the typed field.
    fn code(self) -> i32;

    /// The older text field's value (the stored name).
    fn name(self) -> &'static str;

    /// Parses the older text field.
    fn parse_text(text: &str) -> Result<Self, String>;

    /// Converts the proto enum's number; `None` for UNSPECIFIED or a number this version does
    /// not know (a newer sender's), so the text is read instead.
    fn from_code(code: i32) -> Option<Self>;
}

/// The number of `value` for its typed `*_code` field.
pub fn code<T: WireEnum>(value: T) -> i32 {
    value.code()
}

/// Reads a closed set as a sender of either version sent it: `code` when set, else `text`.
pub fn read<T: WireEnum>(code: i32, text: &str) -> Result<T, String> {
    match T::from_code(code) {
        Some(value) => Ok(value),
        None => T::parse_text(text),
    }
}

/// Reads a repeated closed set (a filter) as a sender of either version sent it: the typed
/// list when it is not empty, else the text list. Every value must be known; the answer is
/// their stored names, as the stores filter on them.
pub fn read_filter<T: WireEnum>(codes: &[i32], texts: &[String]) -> Result<Vec<String>, String> {
    let values: Vec<T> = if codes.is_empty() {
        texts.iter().map(|t| T::parse_text(t)).collect::<Result<_, _>>()?
    } else {
        codes.iter().map(|c| read(*c, "")).collect::<Result<_, _>>()?
    };
    Ok(values.into_iter().map(|v| v.name().to_owned()).collect())
}

/// The code of a value a sender has as text, for the typed field beside it: 0 (unspecified)
/// when the text names no value, so the receiver reads the text and says what is wrong with it.
pub fn code_of<T: WireEnum>(text: &str) -> i32 {
    T::parse_text(text).map_or(0, code)
}

/// The codes of a filter a sender has as text: all of them, or none when one is unknown (the
/// receiver then reads the texts and refuses that one).
pub fn codes_of<T: WireEnum>(texts: &[String]) -> Vec<i32> {
    texts
        .iter()
        .map(|t| T::parse_text(t).ok().map(code))
        .collect::<Option<_>>()
        .unwrap_or_default()
}

macro_rules! wire_enum {
    ($dom:ident, $pbm:ident :: $pb:ident, |$text:ident| $parse:expr, { $($d:ident => $p:ident),+ $(,)? }) => {
        impl From<d::$dom> for $pbm::$pb {
            fn from(value: d::$dom) -> Self {
                match value {
                    $(d::$dom::$d => $pbm::$pb::$p,)+
                }
            }
        }

        impl WireEnum for d::$dom {
            fn code(self) -> i32 {
                $pbm::$pb::from(self) as i32
            }

            fn name(self) -> &'static str {
                self.as_str()
            }

            fn parse_text($text: &str) -> Result<Self, String> {
                $parse
            }

            fn from_code(code: i32) -> Option<Self> {
                match $pbm::$pb::try_from(code).ok()? {
                    $($pbm::$pb::$p => Some(d::$dom::$d),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(ConversationStatus, spb::ConversationStatus,
    |text| d::ConversationStatus::parse(text).ok_or_else(|| format!("conversation status {text:?} is unknown")), {
    Open => Open,
    Active => Active,
    Waiting => Waiting,
    WrapUp => WrapUp,
    Closed => Closed,
});

wire_enum!(Direction, spb::MessageDirection, |text| d::Direction::parse(text), {
    Inbound => Inbound,
    Outbound => Outbound,
    Note => Note,
});

wire_enum!(AuthorKind, spb::AuthorKind, |text| d::AuthorKind::parse(text), {
    Customer => Customer,
    Agent => Agent,
    Bot => Bot,
    Automated => Automated,
    System => System,
});

wire_enum!(Presence, rpb::Presence,
    |text| d::Presence::parse(text).ok_or_else(|| format!("presence {text:?} is unknown")), {
    Available => Available,
    Busy => Busy,
    BusyDnd => BusyDnd,
    Away => Away,
    Offline => Offline,
});

wire_enum!(OfferState, rpb::OfferState,
    |text| d::OfferState::parse(text).ok_or_else(|| format!("offer state {text:?} is unknown")), {
    Pending => Pending,
    Accepted => Accepted,
    Declined => Declined,
    Expired => Expired,
    Cancelled => Cancelled,
});

wire_enum!(ItemState, rpb::ItemState,
    |text| d::ItemState::parse(text).ok_or_else(|| format!("work item state {text:?} is unknown")), {
    Unrouted => Unrouted,
    Queued => Queued,
    Offered => Offered,
    Assigned => Assigned,
    WrapUp => WrapUp,
    Waiting => Waiting,
    Bot => Bot,
    PickOnly => PickOnly,
});

/// The author of a send (agent, bot or automated), as a sender of either version named it: the
/// typed kind when set, else the text (empty: an agent, as the API's sends always were).
pub fn read_author(code: i32, text: &str) -> Result<d::Author, String> {
    match d::AuthorKind::from_code(code) {
        Some(d::AuthorKind::Agent) => Ok(d::Author::Agent),
        Some(d::AuthorKind::Bot) => Ok(d::Author::Bot),
        Some(d::AuthorKind::Automated) => Ok(d::Author::Automated),
        Some(other) => Err(format!("author_kind {other} must be agent, bot or automated")),
        None => d::Author::parse(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_wins_and_the_text_stands_in_when_it_is_unset_or_unknown() {
        let active = code(d::ConversationStatus::Active);
        assert_eq!(active, 2, "the numbers are Dynamics' statuscode");
        assert_eq!(read::<d::ConversationStatus>(active, "closed"), Ok(d::ConversationStatus::Active));
        assert_eq!(read::<d::ConversationStatus>(0, "wrap_up"), Ok(d::ConversationStatus::WrapUp));
        assert_eq!(read::<d::ConversationStatus>(99, "waiting"), Ok(d::ConversationStatus::Waiting));
        assert!(read::<d::ConversationStatus>(0, "").is_err(), "neither given is an error");
        assert!(read::<d::Presence>(0, "asleep").is_err());
    }

    #[test]
    fn every_value_round_trips_through_its_code() {
        for s in [
            d::ConversationStatus::Open,
            d::ConversationStatus::Active,
            d::ConversationStatus::Waiting,
            d::ConversationStatus::WrapUp,
            d::ConversationStatus::Closed,
        ] {
            assert_eq!(read::<d::ConversationStatus>(code(s), ""), Ok(s));
            assert_eq!(code(s), d::ConversationStatus::code(s), "{s:?} keeps Dynamics' statuscode");
        }
        for p in d::Presence::ALL {
            assert_eq!(read::<d::Presence>(code(p), ""), Ok(p));
        }
        for k in [
            d::AuthorKind::Customer,
            d::AuthorKind::Agent,
            d::AuthorKind::Bot,
            d::AuthorKind::Automated,
            d::AuthorKind::System,
        ] {
            assert_eq!(read::<d::AuthorKind>(code(k), ""), Ok(k));
        }
        for state in d::OfferState::ALL {
            assert_eq!(read::<d::OfferState>(code(state), ""), Ok(state));
        }
        for state in d::ItemState::ALL {
            assert_eq!(read::<d::ItemState>(code(state), ""), Ok(state));
        }
    }

    #[test]
    fn a_filter_is_read_from_its_codes_or_else_its_text() {
        let waiting = code(d::ConversationStatus::Waiting);
        assert_eq!(
            read_filter::<d::ConversationStatus>(&[waiting], &["open".into()]),
            Ok(vec!["waiting".to_owned()])
        );
        assert_eq!(
            read_filter::<d::ConversationStatus>(&[], &["open".into()]),
            Ok(vec!["open".to_owned()])
        );
        assert!(read_filter::<d::ConversationStatus>(&[], &["opened".into()]).is_err());
        assert!(read_filter::<d::ItemState>(&[0], &[]).is_err(), "an unspecified code is no state");
        let texts = ["wrap_up".to_owned(), "closed".to_owned()];
        assert_eq!(
            codes_of::<d::ConversationStatus>(&texts),
            vec![code(d::ConversationStatus::WrapUp), code(d::ConversationStatus::Closed)]
        );
        assert!(
            codes_of::<d::ConversationStatus>(&["closed".into(), "gone".into()]).is_empty(),
            "one unknown: none typed"
        );
        assert_eq!(code_of::<d::Presence>("busy_dnd"), code(d::Presence::BusyDnd));
        assert_eq!(code_of::<d::Presence>("asleep"), 0);
    }

    #[test]
    fn a_send_names_its_author_either_way() {
        assert_eq!(read_author(code(d::AuthorKind::Bot), ""), Ok(d::Author::Bot));
        assert_eq!(read_author(0, ""), Ok(d::Author::Agent));
        assert_eq!(read_author(0, "automated"), Ok(d::Author::Automated));
        assert!(read_author(code(d::AuthorKind::Customer), "agent").is_err());
    }
}
