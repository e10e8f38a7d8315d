//! `ringlat-tracing`: a [`tracing_subscriber::Layer`] that records the duration of selected
//! spans into a [`ringlat::Ring`], one record per span.
//!
//! - **Which spans**: a span whose name was configured with [`RingLayer::span`]
//!   (`.span("place_order", "market")`), or any span with a field `kind = "..."` naming a kind
//!   configured in the ring. Other spans cost one name comparison per configured span name.
//! - **Duration**: from the span's creation to its close, i.e. the whole time the request
//!   spends, including the time it waits at `.await` points while the span is not entered (an
//!   `#[instrument]`ed async fn closes its span when the future completes or is dropped). Not
//!   the time the span was entered (busy time). The record's `nanotime` is the creation time.
//! - **Trace id**: the span's `trace_id` field (an integer, or a string of decimal or `0x` hex
//!   digits) when it has one, recorded at creation or later with `Span::record`; otherwise the
//!   span's id.
//! - **Status**: the span's `status` field (an integer, clamped to 0..=255) if recorded;
//!   otherwise 1 if an `error` field was recorded (any value, except `false`), else 0.
//!
//! Each selected span holds a [`ringlat::Timer`] in its extensions (no allocation of ours
//! beyond the subscriber's own span storage); the record goes through the ring's usual path
//! (sampling, breaker, counters).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use tracing_subscriber::layer::SubscriberExt;
//! let ring = ringlat::Ring::builder(dir.path().join("spans.ring"))
//!     .kind(0, "market").kind(1, "cancel")
//!     .create()?;
//! let layer = ringlat_tracing::RingLayer::new(ring.clone()).span("place_order", "market")?;
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("place_order", trace_id = 42_u64, status = tracing::field::Empty);
//!     span.record("status", 3_u64);
//!     drop(span); // closed: one record of kind "market", trace 42, status 3
//!     let _cancel = tracing::info_span!("anything", kind = "cancel").entered();
//! });
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

use ringlat::{Ring, Timer, UnknownKind};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The layer. Build it with [`RingLayer::new`] and [`RingLayer::span`], add it to a
/// `tracing_subscriber::registry()`.
#[derive(Debug, Clone)]
pub struct RingLayer {
    ring: Ring,
    /// Configured span names and their kinds.
    spans: Vec<(String, u8)>,
    /// Every kind of the ring, by name (for `kind = "..."` fields).
    kinds: Vec<(String, u8)>,
}

impl RingLayer {
    /// A layer recording into `ring`; it selects the spans that carry a `kind` field until
    /// [`RingLayer::span`] adds names.
    pub fn new(ring: Ring) -> Self {
        let kinds = ring
            .kind_names()
            .into_iter()
            .map(|(id, name)| (name, id))
            .collect();
        RingLayer {
            ring,
            spans: Vec::new(),
            kinds,
        }
    }

    /// Records spans named `span_name` under the ring's kind named `kind`; an unknown kind is
    /// an error here, not when spans close.
    pub fn span(mut self, span_name: &str, kind: &str) -> Result<Self, UnknownKind> {
        let id = self.ring.kind_handle(kind)?.kind();
        self.spans.retain(|(name, _)| name != span_name);
        self.spans.push((span_name.to_owned(), id));
        Ok(self)
    }
}

/// What a selected span carries until it closes.
struct Timing {
    timer: Timer<Ring>,
    status: Option<u8>,
    error: bool,
}

/// Reads the fields this layer cares about.
#[derive(Default)]
struct Fields<'a> {
    /// The ring's kinds by name, to resolve a `kind` field without copying it.
    kinds: &'a [(String, u8)],
    kind: Option<u8>,
    trace_id: Option<u64>,
    status: Option<u8>,
    error: Option<bool>,
}

fn parse_trace(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Fields<'_> {
    fn kind_named(&self, name: &str) -> Option<u8> {
        self.kinds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }
}

impl Visit for Fields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "trace_id" => self.trace_id = Some(value),
            "status" => self.status = Some(u8::try_from(value).unwrap_or(u8::MAX)),
            "error" => self.error = Some(true),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "trace_id" => self.trace_id = Some(value as u64),
            "status" => self.status = Some(value.clamp(0, 255) as u8),
            "error" => self.error = Some(true),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "error" {
            self.error = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "kind" => self.kind = self.kind_named(value),
            "trace_id" => self.trace_id = parse_trace(value).or(self.trace_id),
            "error" => self.error = Some(true),
            _ => {}
        }
    }

    fn record_error(&mut self, field: &Field, _value: &(dyn std::error::Error + 'static)) {
        if field.name() == "error" {
            self.error = Some(true);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "error" => self.error = Some(true),
            "kind" => self.kind = self.kind_named(format!("{value:?}").trim_matches('"')),
            "trace_id" => self.trace_id = parse_trace(&format!("{value:?}")).or(self.trace_id),
            _ => {}
        }
    }
}

impl<S> Layer<S> for RingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        let by_name = self
            .spans
            .iter()
            .find(|(name, _)| name == metadata.name())
            .map(|(_, kind)| *kind);
        if by_name.is_none() && metadata.fields().field("kind").is_none() {
            return;
        }
        let mut fields = Fields {
            kinds: &self.kinds,
            ..Fields::default()
        };
        attrs.record(&mut fields);
        let kind = by_name.or(fields.kind);
        let (Some(kind), Some(span)) = (kind, ctx.span(id)) else {
            return;
        };
        let timing = Timing {
            timer: self
                .ring
                .start_owned(kind, fields.trace_id.unwrap_or_else(|| id.into_u64())),
            status: fields.status,
            error: fields.error.unwrap_or(false),
        };
        span.extensions_mut().insert(timing);
    }

    fn on_record(&self, id: &span::Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(timing) = extensions.get_mut::<Timing>() else {
            return;
        };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(trace_id) = fields.trace_id {
            timing.timer.set_trace_id(trace_id);
        }
        if fields.status.is_some() {
            timing.status = fields.status;
        }
        if let Some(error) = fields.error {
            timing.error = error;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(timing) = span.extensions_mut().remove::<Timing>() {
            let status = timing.status.unwrap_or(u8::from(timing.error));
            timing.timer.finish(status);
        }
    }
}
