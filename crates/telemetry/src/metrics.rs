//! Access to the process-wide meter. Without OTLP configured the global provider is a no-op,
//! so instruments cost next to nothing.

use opentelemetry::metrics::Meter;

/// Returns the meter every Switchboard instrument is created from.
pub fn meter() -> Meter {
    opentelemetry::global::meter("switchboard")
}
