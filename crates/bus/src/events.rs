//! Event payloads exchanged between services. Each is a versioned, serde-tagged struct; the
//! routing key says which stream it belongs to.
