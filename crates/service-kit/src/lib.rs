//! Building blocks every Switchboard service shares: configuration loading (figment), the
//! shutdown signal turned into one `CancellationToken`, the `/healthz` and `/readyz` router,
//! and the single [`ErrorCode`] that maps to both gRPC and HTTP.

pub mod config;
pub mod error;
pub mod grpc;
pub mod health;
pub mod ids;
pub mod runtime;
pub mod shutdown;

pub use config::{ConfigError, Validate, load_config};
pub use error::ErrorCode;
pub use health::Health;
pub use ids::{InvalidId, optional_id, parse_id};
pub use runtime::Runtime;
pub use shutdown::{shutdown_signal, spawn_shutdown_on_signal};
