//! Progress on standard error for work that takes more than a moment: a spinner that says what the dry-run is doing
//! (starting the shadow, restoring an archive, running statement 3 of 40). It listens to the library's
//! `pgshadow::progress` tracing events, shows up only after half a second, and is cleared before any output.

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
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
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

/// Removes the spinner, before anything else is written.
pub fn clear() {
    if let Some(bar) = BAR.get() {
        bar.finish_and_clear();
    }
}

pub struct ProgressLayer {
    bar: ProgressBar,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ProgressLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "pgshadow::progress" {
            return;
        }
        struct Message(String);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.bar.set_message(message.0);
    }
}
