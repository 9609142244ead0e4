//! Captures log output so tests can assert that secrets never appear in it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// A buffer that collects everything logged while it is installed.
#[derive(Clone, Default)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    /// Installs a global subscriber (trace level, JSON) writing into the capture.
    /// Call once per test process; later calls return a capture that sees nothing.
    pub fn install() -> Self {
        let capture = Self::default();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(capture.clone())
            .try_init();
        capture
    }

    /// Returns everything captured so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.buffer.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
