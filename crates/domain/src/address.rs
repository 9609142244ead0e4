//! WhatsApp addresses as Twilio writes them: `whatsapp:+<E.164>` phone numbers and, for users
//! who turned on WhatsApp usernames, business-scoped user ids (BSUIDs) such as
//! `whatsapp:BR.1A2B3C` (`ExternalUserId`). A [`CustomerAddress`] keeps both when both are known.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The channel prefix Twilio puts on WhatsApp addresses.
pub const WHATSAPP_PREFIX: &str = "whatsapp:";

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `+` followed by 8 to 15 digits with no leading zero.
    #[error("{0:?} is not an E.164 number (+, then 8 to 15 digits, not starting with 0)")]
    NotE164(String),
    /// Not `CC.<id>` / `CC.ENT.<id>`.
    #[error("{0:?} is not a WhatsApp business-scoped user id (CC.<up to 128 letters or digits>)")]
    NotBsuid(String),
    /// Neither a phone number nor a BSUID.
    #[error("{0:?} is not a WhatsApp address")]
    NotWhatsApp(String),
}

/// An E.164 phone number, stored with its `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses `+<8..15 digits>`, first digit not 0 (the `whatsapp:` prefix is accepted).
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let s = raw.strip_prefix(WHATSAPP_PREFIX).unwrap_or(raw);
        let digits = s.strip_prefix('+').ok_or_else(|| AddressError::NotE164(raw.to_owned()))?;
        let valid = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(AddressError::NotE164(raw.to_owned()))
        }
    }

    /// Returns `+<digits>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the digits without `+` (Twilio's `WaId`).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// Returns `whatsapp:+<digits>`.
    pub fn to_whatsapp(&self) -> String {
        format!("{WHATSAPP_PREFIX}{}", self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A WhatsApp business-scoped user id: `CC.<id>` or `CC.ENT.<id>` (stored without `whatsapp:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bsuid(String);

impl Bsuid {
    /// Parses a BSUID (the `whatsapp:` prefix is accepted).
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let s = raw.strip_prefix(WHATSAPP_PREFIX).unwrap_or(raw);
        let err = || AddressError::NotBsuid(raw.to_owned());
        let (country, rest) = s.split_once('.').ok_or_else(err)?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        let id = rest.strip_prefix("ENT.").unwrap_or(rest);
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err());
        }
        Ok(Self(s.to_owned()))
    }

    /// Returns `CC.<id>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns `whatsapp:CC.<id>`.
    pub fn to_whatsapp(&self) -> String {
        format!("{WHATSAPP_PREFIX}{}", self.0)
    }
}

impl TryFrom<String> for Bsuid {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Bsuid> for String {
    fn from(value: Bsuid) -> Self {
        value.0
    }
}

/// One WhatsApp endpoint: a phone number or a BSUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WhatsAppAddress {
    /// `whatsapp:+<E.164>`.
    Phone(PhoneNumber),
    /// `whatsapp:CC.<id>`.
    Bsuid(Bsuid),
}

impl WhatsAppAddress {
    /// Parses `whatsapp:+…` or `whatsapp:CC.…` (the prefix is required).
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let rest = raw
            .strip_prefix(WHATSAPP_PREFIX)
            .ok_or_else(|| AddressError::NotWhatsApp(raw.to_owned()))?;
        if rest.starts_with('+') {
            PhoneNumber::parse(rest).map(Self::Phone)
        } else {
            Bsuid::parse(rest)
                .map(Self::Bsuid)
                .map_err(|_| AddressError::NotWhatsApp(raw.to_owned()))
        }
    }
}

impl fmt::Display for WhatsAppAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Phone(p) => write!(f, "{WHATSAPP_PREFIX}{p}"),
            Self::Bsuid(b) => write!(f, "{WHATSAPP_PREFIX}{}", b.as_str()),
        }
    }
}

impl TryFrom<String> for WhatsAppAddress {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WhatsAppAddress> for String {
    fn from(value: WhatsAppAddress) -> Self {
        value.to_string()
    }
}

/// A customer as WhatsApp identifies them: their phone number when shared, their BSUID when
/// known (Twilio sends it as `ExternalUserId` on every message), at least one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CustomerAddress {
    phone: Option<PhoneNumber>,
    bsuid: Option<Bsuid>,
}

impl CustomerAddress {
    /// Builds the address from a webhook's `From` and optional `ExternalUserId`.
    /// `MessagingServiceSid` plays no part: a number in a Messaging Service pool is the same sender.
    pub fn from_webhook(from: &str, external_user_id: Option<&str>) -> Result<Self, AddressError> {
        let mut phone = None;
        let mut bsuid = None;
        match WhatsAppAddress::parse(from)? {
            WhatsAppAddress::Phone(p) => phone = Some(p),
            WhatsAppAddress::Bsuid(b) => bsuid = Some(b),
        }
        if let Some(ext) = external_user_id.filter(|e| !e.trim().is_empty()) {
            let ext = Bsuid::parse(ext)?;
            if bsuid.as_ref().is_some_and(|b| b != &ext) {
                // `From` wins: it is the address Twilio will deliver replies to.
                return Ok(Self { phone, bsuid });
            }
            bsuid = Some(ext);
        }
        Ok(Self { phone, bsuid })
    }

    /// Builds an address from known parts; fails when both are missing.
    pub fn new(phone: Option<PhoneNumber>, bsuid: Option<Bsuid>) -> Result<Self, AddressError> {
        if phone.is_none() && bsuid.is_none() {
            return Err(AddressError::NotWhatsApp(String::new()));
        }
        Ok(Self { phone, bsuid })
    }

    /// Returns the phone number, if shared.
    pub fn phone(&self) -> Option<&PhoneNumber> {
        self.phone.as_ref()
    }

    /// Returns the BSUID, if known.
    pub fn bsuid(&self) -> Option<&Bsuid> {
        self.bsuid.as_ref()
    }

    /// Returns the identity key: the BSUID when known (it stays the same when a user hides
    /// their number), else `+<E.164>`. Used for deduplicating customers and ordering shards.
    pub fn key(&self) -> String {
        match (&self.bsuid, &self.phone) {
            (Some(b), _) => b.as_str().to_owned(),
            (None, Some(p)) => p.as_str().to_owned(),
            (None, None) => String::new(),
        }
    }

    /// Returns the address to send replies to: the phone number when known, else the BSUID.
    pub fn reply_to(&self) -> WhatsAppAddress {
        match (&self.phone, &self.bsuid) {
            (Some(p), _) => WhatsAppAddress::Phone(p.clone()),
            (None, Some(b)) => WhatsAppAddress::Bsuid(b.clone()),
            // Construction guarantees one of them.
            (None, None) => WhatsAppAddress::Bsuid(Bsuid(String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_rules() {
        assert!(PhoneNumber::parse("+5511987654321").is_ok());
        assert!(PhoneNumber::parse("whatsapp:+14155238886").is_ok());
        assert_eq!(PhoneNumber::parse("+14155238886").unwrap().digits(), "14155238886");
        assert!(PhoneNumber::parse("+12345678").is_ok(), "8 digits is the minimum");
        assert!(PhoneNumber::parse("+123456789012345").is_ok(), "15 digits is the maximum");
        for bad in [
            "14155238886",
            "+1234567",
            "+1234567890123456",
            "+0155238886",
            "+1415-523",
            "",
            "+",
            "whatsapp:14155238886",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bsuid_rules() {
        assert_eq!(
            Bsuid::parse("whatsapp:ID.4566546130240823").unwrap().as_str(),
            "ID.4566546130240823"
        );
        assert!(Bsuid::parse("BR.ENT.1A2B3C").is_ok());
        for bad in ["id.123", "BRA.123", "BR.", "BR.12-3", "BR", &format!("BR.{}", "a".repeat(129))] {
            assert!(Bsuid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_need_the_whatsapp_prefix() {
        assert!(matches!(
            WhatsAppAddress::parse("whatsapp:+14155238886"),
            Ok(WhatsAppAddress::Phone(_))
        ));
        assert!(matches!(WhatsAppAddress::parse("whatsapp:BR.1A2B"), Ok(WhatsAppAddress::Bsuid(_))));
        assert!(WhatsAppAddress::parse("+14155238886").is_err());
        assert!(WhatsAppAddress::parse("sms:+14155238886").is_err());
        assert_eq!(
            WhatsAppAddress::parse("whatsapp:+14155238886").unwrap().to_string(),
            "whatsapp:+14155238886"
        );
    }

    #[test]
    fn customer_keeps_phone_and_bsuid_and_keys_on_the_bsuid() {
        let c = CustomerAddress::from_webhook("whatsapp:+6285176810035", Some("whatsapp:ID.4566546130240823")).unwrap();
        assert_eq!(c.phone().unwrap().as_str(), "+6285176810035");
        assert_eq!(c.bsuid().unwrap().as_str(), "ID.4566546130240823");
        assert_eq!(c.key(), "ID.4566546130240823");
        assert_eq!(c.reply_to().to_string(), "whatsapp:+6285176810035");

        // The same user later hides their number: same key.
        let hidden = CustomerAddress::from_webhook("whatsapp:ID.4566546130240823", Some("whatsapp:ID.4566546130240823")).unwrap();
        assert_eq!(hidden.key(), c.key());
        assert_eq!(hidden.reply_to().to_string(), "whatsapp:ID.4566546130240823");

        // No ExternalUserId (older payloads, sandbox): the phone number is the key.
        let plain = CustomerAddress::from_webhook("whatsapp:+5511987654321", None).unwrap();
        assert_eq!(plain.key(), "+5511987654321");
        assert!(
            CustomerAddress::from_webhook("whatsapp:+5511987654321", Some(""))
                .unwrap()
                .bsuid()
                .is_none()
        );
    }

    #[test]
    fn bad_customer_addresses_are_refused() {
        assert!(CustomerAddress::from_webhook("+5511987654321", None).is_err());
        assert!(CustomerAddress::from_webhook("whatsapp:+5511987654321", Some("not-a-bsuid")).is_err());
        assert!(CustomerAddress::new(None, None).is_err());
    }

    #[test]
    fn serde_round_trips_validated_values() {
        let a = WhatsAppAddress::parse("whatsapp:+14155238886").unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"whatsapp:+14155238886\"");
        assert_eq!(serde_json::from_str::<WhatsAppAddress>(&json).unwrap(), a);
        assert!(serde_json::from_str::<PhoneNumber>("\"+0123\"").is_err());
    }
}
