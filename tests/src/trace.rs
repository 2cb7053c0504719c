//! Capturing what the SDK logs, for the tests that check no secret reaches a log line.

use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// Everything a TRACE-level `tracing_subscriber::fmt` subscriber writes on this thread while
/// the capture lives (use a `current_thread` runtime so every task logs here).
///
/// ```no_run
/// let capture = smartcar_tests::trace::TraceCapture::start();
/// tracing::info!("hello");
/// assert!(capture.text().contains("hello"));
/// ```
pub struct TraceCapture {
    buffer: Buffer,
    _guard: DefaultGuard,
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TraceCapture {
    /// Installs the subscriber as this thread's default until the capture is dropped.
    pub fn start() -> TraceCapture {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        TraceCapture {
            buffer,
            _guard: guard,
        }
    }

    /// What was written so far (lossy UTF-8).
    pub fn text(&self) -> String {
        let bytes = self.buffer.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
