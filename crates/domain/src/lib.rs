//! The rules of Switchboard, with no I/O: WhatsApp addresses, the 24-hour customer-service
//! window, templates, what may be sent and received, the conversation lifecycle, delivery
//! status, automated messages, typed ids. Services call these; nothing here knows about
//! Postgres, RabbitMQ, gRPC or HTTP (the `sqlx` feature only lets the typed ids be bound and
//! decoded as `uuid` columns).

pub mod address;
pub mod attachment;
pub mod automated;
pub mod client_address;
pub mod clock;
pub mod conversation;
pub mod delivery;
pub mod health;
pub mod ids;
pub mod indicators;
pub mod message;
pub mod netguard;
pub mod policy;
pub mod routing;
mod sql_text;
pub mod template;
pub mod window;

pub use address::{AddressError, Bsuid, CustomerAddress, PhoneNumber, WhatsAppAddress};
pub use clock::{Clock, ManualClock, SystemClock};
pub use window::ServiceWindow;
