//! Prometheus metrics: requests by route and status, their duration, the store's head and each
//! projection's checkpoint and lag. One registry per application value, so tests can run many.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub head: IntGauge,
    pub checkpoint: IntGaugeVec,
    pub lag: IntGaugeVec,
    /// Mails queued and not yet sent.
    pub mail_pending: IntGauge,
    /// Mails that failed every attempt, or whose sending was interrupted.
    pub mail_failed: IntGauge,
    pub mails_sent: IntCounter,
    /// Attempts that failed (each retried or ending `failed`).
    pub mail_errors: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("cachet".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request duration by route"),
            &["route", "method"],
        )?;
        let head = IntGauge::new("event_store_head_position", "Last committed global position")?;
        let checkpoint = IntGaugeVec::new(
            Opts::new("projection_checkpoint", "Last position applied by a projection"),
            &["projection"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new("projection_lag_events", "Events not yet applied by a projection"),
            &["projection"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(head.clone()))?;
        registry.register(Box::new(checkpoint.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        let mail_pending = IntGauge::new("mail_outbox_pending", "Mails queued and not yet sent")?;
        let mail_failed = IntGauge::new("mail_outbox_failed", "Mails that could not be sent")?;
        let mails_sent = IntCounter::new("mails_sent_total", "Mails sent by this process")?;
        let mail_errors = IntCounter::new("mail_send_errors_total", "Failed attempts to send a mail")?;
        registry.register(Box::new(mail_pending.clone()))?;
        registry.register(Box::new(mail_failed.clone()))?;
        registry.register(Box::new(mails_sent.clone()))?;
        registry.register(Box::new(mail_errors.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            head,
            checkpoint,
            lag,
            mail_pending,
            mail_failed,
            mails_sent,
            mail_errors,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
