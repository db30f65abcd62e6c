//! Prometheus metrics, one recorder per [`AppState`](crate::app::AppState), no global recorder.
//!
//! Why no global: tests run several nodes in one process, and each must report only its own
//! traffic; a process-wide recorder (`metrics::set_global_recorder`) would mix them and can be
//! installed only once. `metrics::with_local_recorder` would work too, but it scopes the
//! recorder to a synchronous closure on one thread, so every call site (most of them async)
//! would need wrapping. Instead [`Metrics`] owns the `PrometheusRecorder` and calls its
//! `Recorder::register_*` methods directly: that is exactly what the `counter!` macros do
//! under the hood, minus the thread-local lookup. Hot unlabelled handles are registered once
//! and kept; labelled ones are looked up in the recorder's registry per call (a hash lookup).
//!
//! Gauges that mirror state someone else owns (live rooms, subscriptions, fan-out drops) are
//! sampled from the hub at scrape time instead of being kept in step by hand.
//!
//! Names are in [`names`], so every recorder (provider outbox, webhooks, the Redis client)
//! records into the series documented in `docs/operations.md` without inventing its own.

use ::metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::time::Duration;

/// Every metric name Switchboard exports.
pub mod names {
    /// Gauge: WebSocket sessions open on this node.
    pub const WS_OPEN: &str = "switchboard_ws_connections_open";
    /// Counter: WebSocket sessions started.
    pub const WS_OPENED: &str = "switchboard_ws_connections_opened_total";
    /// Counter `{code}`: sessions ended, by close code (`1006` = the peer vanished).
    pub const WS_CLOSED: &str = "switchboard_ws_connections_closed_total";
    /// Counter `{reason}`: upgrades refused at the door (origin, limits, token, shutdown).
    pub const WS_REFUSED: &str = "switchboard_ws_connections_refused_total";
    /// Gauge: room subscriptions held by this node's connections (sampled at scrape).
    pub const WS_SUBSCRIPTIONS: &str = "switchboard_ws_subscriptions";
    /// Gauge: rooms with at least one local subscriber (sampled at scrape).
    pub const LIVE_ROOMS: &str = "switchboard_live_rooms";
    pub const WS_WATCHERS: &str = "switchboard_ws_watchers";
    /// Counter: publications refused because a subscriber's queue was full.
    pub const FANOUT_DROPS: &str = "switchboard_fanout_queue_drops_total";
    /// Counter: connections closed as slow consumers (4008).
    pub const SLOW_CONSUMER_CLOSES: &str = "switchboard_ws_slow_consumer_closes_total";
    /// Counter `{entry}`: messages stored, by the door they came in by (`ws`, `rest`, `provider`).
    /// A retry of a message already stored (same retry key / provider message id) is not one.
    pub const MESSAGES_POSTED: &str = "switchboard_messages_posted_total";
    /// Counter `{provider}`: provider webhooks that redelivered a message already stored
    /// (same provider message id): answered OK, nothing stored.
    pub const INBOUND_DUPLICATES: &str = "switchboard_inbound_duplicates_total";
    /// Counter `{scope}`: requests or frames refused by a rate limit (`api`, `ws`, `provider`).
    pub const RATE_LIMITED: &str = "switchboard_rate_limited_total";
    /// Histogram `{method, route, status}`: HTTP request latency in seconds.
    pub const HTTP_DURATION: &str = "switchboard_http_request_duration_seconds";
    /// Counter `{channel, status}`: outbound deliveries to channel participants.
    pub const DELIVERIES: &str = "switchboard_deliveries_total";
    /// Gauge `{kind, target}`: deliveries waiting in an outbox (`kind` = provider | webhook).
    pub const OUTBOX_DEPTH: &str = "switchboard_outbox_depth";
    /// Counter `{kind, target}`: delivery attempts that were retried.
    pub const OUTBOX_RETRIES: &str = "switchboard_outbox_retries_total";
    /// Histogram `{command}`: Redis command latency in seconds.
    pub const REDIS_DURATION: &str = "switchboard_redis_command_duration_seconds";
    /// Counter `{command}`: Redis commands that failed or timed out.
    pub const REDIS_ERRORS: &str = "switchboard_redis_errors_total";
}

/// Which door a message came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Entry {
    Ws,
    Rest,
    Provider,
}

impl Entry {
    fn as_str(self) -> &'static str {
        match self {
            Entry::Ws => "ws",
            Entry::Rest => "rest",
            Entry::Provider => "provider",
        }
    }
}

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const REDIS_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0];

static META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// What the hub and the watchers report for the gauges they own the truth for.
#[derive(Debug, Clone, Copy)]
pub struct HubSample {
    pub rooms: usize,
    pub subscriptions: usize,
    pub watchers: usize,
    pub fanout_drops: u64,
}

/// This node's recorder and the handles recorded most often.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    ws_open: Gauge,
    ws_opened: Counter,
    slow_consumer_closes: Counter,
    /// `messages_posted_total` by entry, in `Entry` order: recorded once per message.
    posted: [Counter; 3],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Metrics {
    /// A fresh recorder; every series carries `node = node_id`.
    pub fn new(node_id: &str) -> Metrics {
        let recorder = PrometheusBuilder::new()
            .add_global_label("node", node_id)
            .set_buckets_for_metric(Matcher::Full(names::HTTP_DURATION.into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(names::REDIS_DURATION.into()), REDIS_BUCKETS))
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            ws_open: recorder.register_gauge(&Key::from_static_name(names::WS_OPEN), &META),
            ws_opened: recorder.register_counter(&Key::from_static_name(names::WS_OPENED), &META),
            slow_consumer_closes: recorder.register_counter(&Key::from_static_name(names::SLOW_CONSUMER_CLOSES), &META),
            posted: [Entry::Ws, Entry::Rest, Entry::Provider]
                .map(|e| recorder.register_counter(&key(names::MESSAGES_POSTED, &[("entry", e.as_str())]), &META)),
            recorder,
            handle,
        };
        m.describe();
        // Register the unlabelled series up front so a scrape shows them at 0 before traffic.
        m.counter(names::FANOUT_DROPS, &[]).absolute(0);
        m.gauge(names::WS_SUBSCRIPTIONS, &[]).set(0.0);
        m.gauge(names::LIVE_ROOMS, &[]).set(0.0);
        m.gauge(names::WS_WATCHERS, &[]).set(0.0);
        m.ws_open.set(0.0);
        m
    }

    fn describe(&self) {
        use names::*;
        let r = &self.recorder;
        let d = |s: &'static str| SharedString::const_str(s);
        r.describe_gauge(WS_OPEN.into(), None, d("WebSocket sessions open on this node"));
        r.describe_counter(WS_OPENED.into(), None, d("WebSocket sessions started"));
        r.describe_counter(WS_CLOSED.into(), None, d("WebSocket sessions ended, by close code"));
        r.describe_counter(WS_REFUSED.into(), None, d("WebSocket upgrades refused, by reason"));
        r.describe_gauge(WS_SUBSCRIPTIONS.into(), None, d("Room subscriptions held by local connections"));
        r.describe_gauge(LIVE_ROOMS.into(), None, d("Rooms with at least one local subscriber"));
        r.describe_gauge(WS_WATCHERS.into(), None, d("Connections watching their tenant's conversation list"));
        r.describe_counter(FANOUT_DROPS.into(), None, d("Publications dropped on a full connection queue"));
        r.describe_counter(SLOW_CONSUMER_CLOSES.into(), None, d("Connections closed as slow consumers"));
        r.describe_counter(
            MESSAGES_POSTED.into(),
            None,
            d("New messages stored, by entry door (retries of a stored message not counted)"),
        );
        r.describe_counter(
            INBOUND_DUPLICATES.into(),
            None,
            d("Provider redeliveries of a message already stored (nothing stored), by provider"),
        );
        r.describe_counter(RATE_LIMITED.into(), None, d("Requests or frames refused by a rate limit"));
        r.describe_histogram(HTTP_DURATION.into(), Some(Unit::Seconds), d("HTTP request latency"));
        r.describe_counter(DELIVERIES.into(), None, d("Outbound deliveries, by channel and status"));
        r.describe_gauge(OUTBOX_DEPTH.into(), None, d("Deliveries waiting in an outbox"));
        r.describe_counter(OUTBOX_RETRIES.into(), None, d("Delivery attempts retried"));
        r.describe_histogram(REDIS_DURATION.into(), Some(Unit::Seconds), d("Redis command latency"));
        r.describe_counter(REDIS_ERRORS.into(), None, d("Redis commands that failed or timed out"));
    }

    /// A counter with labels, looked up in (or added to) this node's registry.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder.register_counter(&key(name, labels), &META)
    }

    /// A gauge with labels.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &META)
    }

    /// A histogram with labels.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder.register_histogram(&key(name, labels), &META)
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds buffered histogram samples; run periodically so an unscraped node stays bounded.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    pub fn ws_opened(&self) {
        self.ws_opened.increment(1);
        self.ws_open.increment(1.0);
    }

    /// A session ended with `code` (1006 when the peer vanished without a close frame).
    pub fn ws_closed(&self, code: u16) {
        self.ws_open.decrement(1.0);
        if code == crate::wire::close::SLOW_CONSUMER {
            self.slow_consumer_closes.increment(1);
        }
        // Clients pick their own close codes; anything outside the standard range and ours is
        // folded into `other` so a client cannot mint series.
        let known = (1000..=1015).contains(&code) || (4000..4100).contains(&code);
        let label = if known { code.to_string() } else { "other".into() };
        self.counter(names::WS_CLOSED, &[("code", &label)]).increment(1);
    }

    pub fn ws_refused(&self, reason: &'static str) {
        self.counter(names::WS_REFUSED, &[("reason", reason)]).increment(1);
    }

    pub fn message_posted(&self, entry: Entry) {
        self.posted[entry as usize].increment(1);
    }

    /// A provider redelivered a message we had stored (its retry of the same message id).
    pub fn inbound_duplicate(&self, provider: &'static str) {
        self.counter(names::INBOUND_DUPLICATES, &[("provider", provider)]).increment(1);
    }

    pub fn rate_limited(&self, scope: &'static str) {
        self.counter(names::RATE_LIMITED, &[("scope", scope)]).increment(1);
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let h = self.histogram(names::HTTP_DURATION, &[("method", method), ("route", route), ("status", &status)]);
        h.record(elapsed.as_secs_f64());
    }

    /// Samples the hub into the gauges it owns the truth for; called before each render.
    pub fn sample_hub(&self, s: HubSample) {
        self.gauge(names::LIVE_ROOMS, &[]).set(s.rooms as f64);
        self.gauge(names::WS_SUBSCRIPTIONS, &[]).set(s.subscriptions as f64);
        self.gauge(names::WS_WATCHERS, &[]).set(s.watchers as f64);
        self.counter(names::FANOUT_DROPS, &[]).absolute(s.fanout_drops);
    }

    /// For the channel outbox: one delivery reached `status`
    /// (`sent`, `delivered`, `failed`…) on `channel` (`sms`, `line`, `webchat`…).
    pub fn delivery(&self, channel: &str, status: &str) {
        self.counter(names::DELIVERIES, &[("channel", channel), ("status", status)]).increment(1);
    }

    /// For the provider and webhook outboxes: `depth` deliveries wait for
    /// `target` (a provider name or webhook endpoint id; never a URL with credentials).
    pub fn outbox_depth(&self, kind: &'static str, target: &str, depth: usize) {
        self.gauge(names::OUTBOX_DEPTH, &[("kind", kind), ("target", target)]).set(depth as f64);
    }

    /// For the outboxes: one attempt for `target` will be retried.
    pub fn outbox_retry(&self, kind: &'static str, target: &str) {
        self.counter(names::OUTBOX_RETRIES, &[("kind", kind), ("target", target)]).increment(1);
    }

    /// Hook for the Redis store: one `command` took `elapsed` and succeeded or not.
    pub fn redis_command(&self, command: &'static str, elapsed: Duration, ok: bool) {
        self.histogram(names::REDIS_DURATION, &[("command", command)]).record(elapsed.as_secs_f64());
        if !ok {
            self.counter(names::REDIS_ERRORS, &[("command", command)]).increment(1);
        }
    }
}

/// How often histogram buffers are folded and idle rate-limiter keys trimmed.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs [`Metrics::upkeep`] and [`crate::limits::Limits::upkeep`] until the node shuts down.
pub async fn upkeep_loop(state: crate::app::AppState) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                state.metrics.upkeep();
                state.limits.upkeep();
            }
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(*k, v.to_string())).collect();
    Key::from_parts(name, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_recorders_do_not_share_series() {
        let a = Metrics::new("a");
        let b = Metrics::new("b");
        a.message_posted(Entry::Rest);
        a.http_request("GET", "/healthz", 200, Duration::from_millis(3));
        let text = a.render();
        assert!(text.contains(r#"switchboard_messages_posted_total{node="a",entry="rest"} 1"#), "{text}");
        assert!(text.contains("switchboard_http_request_duration_seconds_bucket{"), "a histogram, not a summary");
        let other = b.render();
        assert!(other.contains(r#"switchboard_messages_posted_total{node="b",entry="rest"} 0"#), "{other}");
        assert!(!other.contains("switchboard_http_request_duration_seconds"), "{other}");
    }
}
