//! Progress on standard error for work that takes more than a moment: a spinner that says what the dry-run is doing
//! (starting the shadow, restoring an archive, running statement 3 of 40). It listens to the library's
//! `pgshadow::progress` tracing events, shows up only after half a second, and is cleared before any output. A
//! download (`pgshadow::download` events: `bytes`, `total`) turns it into a bar with the bytes and the rate.

use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// A layer that shows the library's progress events in a spinner, or `None` when nothing should be drawn.
pub fn layer(enabled: bool) -> Option<ProgressLayer> {
    if !enabled {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(spinner_style());
    let shown = bar.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        if !shown.is_finished() {
            shown.set_draw_target(ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(120));
        }
    });
    let _ = BAR.set(bar.clone());
    Some(ProgressLayer { bar })
}

/// Writes `text` to stderr above the spinner or bar, which is drawn again below it.
pub fn write_above(text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match BAR.get() {
        Some(bar) => bar.suspend(|| std::io::stderr().lock().write_all(text)),
        None => std::io::stderr().lock().write_all(text),
    }
}

/// Standard error as a `tracing` writer that keeps clear of the spinner.
pub struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_above(buf).map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Removes the spinner, before anything else is written.
pub fn clear() {
    if let Some(bar) = BAR.get() {
        bar.finish_and_clear();
    }
}

pub struct ProgressLayer {
    bar: ProgressBar,
}

/// The fields of a progress event.
#[derive(Default)]
struct Fields {
    message: String,
    bytes: u64,
    total: u64,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "bytes" => self.bytes = value,
            "total" => self.total = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ProgressLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        match event.metadata().target() {
            "pgshadow::progress" => {
                if self.bar.length().is_some() {
                    self.bar.set_style(spinner_style());
                    self.bar.unset_length();
                }
                self.bar.set_message(fields.message);
            }
            "pgshadow::download" => {
                if self.bar.length().is_none() {
                    self.bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.bar.reset();
                    self.bar.set_message("downloading PostgreSQL");
                }
                self.bar.set_length(fields.total.max(fields.bytes));
                self.bar.set_position(fields.bytes);
            }
            _ => {}
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner())
}
