//! AMQP headers ⇄ string maps (trace context, attempt counters).

use std::collections::BTreeMap;

use lapin::types::{AMQPValue, FieldTable};

/// Header counting the attempts of a message (1 on first delivery).
pub const ATTEMPT_HEADER: &str = "x-sb-attempt";

/// Header keeping the routing key a message was first published with. A message parked in the
/// delay tier comes back through the retry exchange under its queue's name, and a dead letter
/// goes out under it too; handlers dispatch on the original key, so it travels with the message.
pub const ROUTING_KEY_HEADER: &str = "x-sb-routing-key";

/// Converts string headers into an AMQP field table.
pub(crate) fn map_to_table(map: &BTreeMap<String, String>) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in map {
        table.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
    }
    table
}

/// Returns the string-valued headers of a field table (others are rendered as text).
pub fn headers_to_map(table: Option<&FieldTable>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let Some(table) = table else { return map };
    for (k, v) in table.inner() {
        let value = match v {
            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            AMQPValue::ShortString(s) => s.as_str().to_owned(),
            AMQPValue::LongLongInt(n) => n.to_string(),
            AMQPValue::LongInt(n) => n.to_string(),
            AMQPValue::LongUInt(n) => n.to_string(),
            AMQPValue::ShortInt(n) => n.to_string(),
            AMQPValue::Boolean(b) => b.to_string(),
            _ => continue,
        };
        map.insert(k.as_str().to_owned(), value);
    }
    map
}
