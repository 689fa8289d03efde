//! A small Prometheus registry: counters, gauges and histograms with labels, updated with
//! atomics (the hot path of a request takes no lock once its series exists) and rendered in
//! the Prometheus text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Latency buckets in seconds: fine below 10 ms, where these services live.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The registry of one service. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
}

struct Family {
    help: String,
    kind: &'static str,
    /// Rendered label set (`{a="b"}` or empty) → series.
    series: BTreeMap<String, Series>,
}

#[derive(Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// A monotonically increasing count.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A distribution of durations over [`LATENCY_BUCKETS`].
#[derive(Clone, Default)]
pub struct Histogram(Arc<HistogramState>);

#[derive(Default)]
struct HistogramState {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        let s = &self.0;
        s.buckets[slot].fetch_add(1, Ordering::Relaxed);
        s.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
        s.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter `name{labels}`; the same name and labels always give the same counter.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.series(name, help, "counter", labels, || {
            Series::Counter(Counter::default())
        }) {
            Series::Counter(c) => c,
            _ => panic!("metric {name} registered twice with different types"),
        }
    }

    /// The gauge `name{labels}`.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.series(name, help, "gauge", labels, || {
            Series::Gauge(Gauge::default())
        }) {
            Series::Gauge(g) => g,
            _ => panic!("metric {name} registered twice with different types"),
        }
    }

    /// The histogram `name{labels}` (seconds, [`LATENCY_BUCKETS`]).
    pub fn histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Histogram {
        match self.series(name, help, "histogram", labels, || {
            Series::Histogram(Histogram::default())
        }) {
            Series::Histogram(h) => h,
            _ => panic!("metric {name} registered twice with different types"),
        }
    }

    fn series(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Series,
    ) -> Series {
        let key = render_labels(labels);
        let mut families = self.families.lock().expect("metrics lock");
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
        });
        assert_eq!(
            family.kind, kind,
            "metric {name} registered twice with different types"
        );
        family.series.entry(key).or_insert_with(make).clone()
    }

    /// Everything in the Prometheus text format, families sorted by name.
    pub fn render(&self) -> String {
        let families = self.families.lock().expect("metrics lock");
        let mut out = String::with_capacity(4096);
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(c) => {
                        let _ = writeln!(out, "{name}{labels} {}", c.get());
                    }
                    Series::Gauge(g) => {
                        let _ = writeln!(out, "{name}{labels} {}", g.get());
                    }
                    Series::Histogram(h) => render_histogram(&mut out, name, labels, h),
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let s = &h.0;
    // Snapshot count first so that cumulative buckets never exceed it by much under load.
    let mut cumulative = 0u64;
    for (i, bucket) in s.buckets.iter().enumerate() {
        cumulative += bucket.load(Ordering::Relaxed);
        let le = match LATENCY_BUCKETS.get(i) {
            Some(le) => le.to_string(),
            None => "+Inf".to_string(),
        };
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            with_label(labels, "le", &le)
        );
    }
    let sum = s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{labels} {sum}");
    let _ = writeln!(out, "{name}_count{labels} {cumulative}");
}

/// `{a="x",b="y"}`, or empty for no labels.
fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape_label_value(v));
    }
    s.push('}');
    s
}

/// Adds one label to an already rendered label set.
fn with_label(labels: &str, key: &str, value: &str) -> String {
    let extra = format!("{key}=\"{}\"", escape_label_value(value));
    match labels.strip_suffix('}') {
        Some(open) => format!("{open},{extra}}}"),
        None => format!("{{{extra}}}"),
    }
}

fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_in_text_format() {
        let m = Metrics::new();
        let c = m.counter("jobs_total", "Jobs done.", &[("kind", "a\"b\\c\nd")]);
        c.inc();
        c.add(2);
        // Same name and labels: same series.
        m.counter("jobs_total", "Jobs done.", &[("kind", "a\"b\\c\nd")])
            .inc();
        m.gauge("queue_depth", "Items waiting.", &[]).set(-3);
        let h = m.histogram("latency_seconds", "Latency.", &[("route", "/x")]);
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(10));

        let text = m.render();
        let expected_counter = "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{kind=\"a\\\"b\\\\c\\nd\"} 4\n";
        assert!(text.contains(expected_counter), "{text}");
        assert!(
            text.contains("# TYPE queue_depth gauge\nqueue_depth -3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE latency_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{route=\"/x\",le=\"0.00025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{route=\"/x\",le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{route=\"/x\",le=\"5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_sum{route=\"/x\"} 10.0003\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_count{route=\"/x\"} 2\n"),
            "{text}"
        );
        // Families sorted by name: stable output.
        let order: Vec<usize> = ["jobs_total", "latency_seconds", "queue_depth"]
            .iter()
            .map(|n| text.find(&format!("# HELP {n}")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    #[should_panic(expected = "different types")]
    fn one_name_cannot_be_two_types() {
        let m = Metrics::new();
        m.counter("x", "x", &[]);
        m.gauge("x", "x", &[]);
    }
}
