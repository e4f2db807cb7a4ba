//! A real Prometheus server (Debian's `prometheus` package) scraping a live worker that runs
//! against the real broker: the worker's series arrive in Prometheus, and every PromQL
//! expression of the Grafana dashboard and of the alert rules (as printed by
//! `scripts/check-deploy.sh --print-promql`) parses and returns data.
//!
//! The server binary is `NEWSFLOW_TEST_PROMETHEUS`, else `/usr/bin/prometheus`, else
//! `prometheus` on the PATH (`scripts/test.sh` installs it). Without a binary the test
//! skips, unless `NEWSFLOW_REQUIRE_BROKER` is set, in which case it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

const PARTITIONS: i32 = 3;

/// `$__rate_interval` in the dashboard queries. Each batch of articles below is pushed,
/// processed and scraped within a few seconds, so a 30 s window holds both batches, many
/// samples of every series, and the increases between them.
const RATE_INTERVAL: &str = "30s";

/// The worker's metric contract (as in `scripts/check-deploy.sh`): every one must be scraped.
const COUNTERS_AND_GAUGES: &[&str] = &[
    "newsflow_messages_consumed_total",
    "newsflow_events_produced_total",
    "newsflow_messages_dead_lettered_total",
    "newsflow_processing_errors_total",
    "newsflow_inflight_messages",
    "newsflow_consumer_lag_messages",
    "newsflow_consumer_committed_lag_messages",
    "newsflow_consumer_lag_seconds",
    "newsflow_entities_extracted_total",
    "newsflow_rebalances_total",
    "newsflow_assigned_partitions",
    "newsflow_ready",
    "newsflow_build_info",
    "newsflow_kafka_broker_up",
    "newsflow_kafka_broker_rtt_seconds",
    "newsflow_kafka_queue_messages",
    "newsflow_kafka_reply_queue_ops",
];
const HISTOGRAMS: &[&str] = &[
    "newsflow_stage_duration_seconds",
    "newsflow_end_to_end_latency_seconds",
    "newsflow_sentiment_score",
];

/// Expressions from `--print-promql` that may legitimately return no data on a healthy
/// worker, each with the reason. Sources `dashboard` and `alert-signal` must return data;
/// anything listed here must still evaluate without error.
const MAY_BE_EMPTY: &[(&str, &str)] = &[(
    "Committed input position per partition [A]",
    "exactly-once mode only (one series per partition a transaction committed); this worker \
     runs at-least-once",
)];

/// Alerts that may be pending on this healthy worker, each with the reason. Every other
/// alert rule must be inactive.
const MAY_BE_ACTIVE: &[(&str, &str)] = &[];

/// The Prometheus server binary, or `None` to skip (panics when a broker is required).
fn prometheus_binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("NEWSFLOW_TEST_PROMETHEUS") {
        Some(p) if !p.is_empty() => vec![PathBuf::from(p)],
        _ => {
            let mut c = vec![PathBuf::from("/usr/bin/prometheus")];
            if let Some(path) = std::env::var_os("PATH") {
                c.extend(std::env::split_paths(&path).map(|d| d.join("prometheus")));
            }
            c
        }
    };
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    assert!(
        std::env::var("NEWSFLOW_REQUIRE_BROKER").is_err(),
        "no prometheus binary (NEWSFLOW_TEST_PROMETHEUS, /usr/bin/prometheus or PATH) but \
         NEWSFLOW_REQUIRE_BROKER is set; `bash scripts/check-deploy.sh --install-only` installs it"
    );
    eprintln!("skipping: no prometheus binary (scripts/test.sh installs Debian's package)");
    None
}

/// A Prometheus server on a free loopback port with its own config and TSDB in a temporary
/// directory; killed when dropped (printing its log if the test failed).
struct PrometheusServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- prometheus.log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl PrometheusServer {
    /// Starts `binary` scraping `target` every second as job `newsflow`, with the
    /// repository's alert rules loaded.
    async fn start(binary: &Path, target: &str, rule_file: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: newsflow\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules = rule_file.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));
        let mut server = PrometheusServer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/-/ready")).await
                && r.status().is_success()
            {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("prometheus exited at start-up ({status})");
            }
            assert!(Instant::now() < deadline, "prometheus never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = url::Url::parse_with_params(
            &format!("http://127.0.0.1:{}/api/v1/{path}", self.port),
            params,
        )
        .unwrap();
        let text = reqwest::get(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
    }

    /// An instant query: its result as a list of samples (a scalar becomes one sample), or
    /// Prometheus's error.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let body = self.api("query", &[("query", expr)]).await;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        let data = &body["data"];
        Ok(match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => data["result"].as_array().cloned().unwrap(),
            _ => vec![data["result"].clone()],
        })
    }

    /// The values of an instant query that must succeed.
    async fn values(&self, expr: &str) -> Vec<f64> {
        self.query(expr)
            .await
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .iter()
            .map(sample_value)
            .collect()
    }

    /// The single value of `expr` (panics unless there is exactly one sample).
    async fn value(&self, expr: &str) -> f64 {
        let v = self.values(expr).await;
        assert_eq!(v.len(), 1, "{expr} returned {v:?}");
        v[0]
    }

    /// Waits until `expr` returns one sample for which `ok` holds.
    async fn wait_for(&self, expr: &str, ok: impl Fn(f64) -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = Vec::new();
        while Instant::now() < deadline {
            last = self.values(expr).await;
            if last.len() == 1 && ok(last[0]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{expr} did not reach the expected value within {timeout:?}; last {last:?}");
    }
}

/// The value of an instant-vector sample (or of a scalar result).
fn sample_value(s: &Value) -> f64 {
    let v = if s.is_array() { s } else { &s["value"] };
    v[1].as_str()
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("not a sample: {s}"))
}

/// `source`, `name`, `expr` for every dashboard and alert expression, from the deploy
/// checks script (the same list it validates with promtool).
fn promql_expressions() -> Vec<(String, String, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-deploy.sh");
    let out = Command::new("bash")
        .args([script, "--print-promql"])
        .env("PROMQL_RATE_INTERVAL", RATE_INTERVAL)
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/check-deploy.sh --print-promql");
    assert!(
        out.status.success(),
        "--print-promql failed: {}",
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            match (f.next(), f.next(), f.next()) {
                (Some(s), Some(n), Some(e)) => (s.to_string(), n.to_string(), e.to_string()),
                _ => panic!("unexpected --print-promql line: {l:?}"),
            }
        })
        .collect()
}

/// Articles `from..to` plus the given poison values, keyed by id.
fn batch(from: usize, to: usize, poison: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    let mut records: Vec<(String, Vec<u8>)> = (from..to)
        .map(|n| (format!("prom{n}"), article(&format!("prom{n}"), n)))
        .collect();
    for (i, (key, value)) in poison.iter().enumerate() {
        records.insert(i * 7 + 3, (key.to_string(), value.to_vec()));
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_worker_and_every_dashboard_and_alert_query_returns_data() {
    let Some(brokers) = brokers() else { return };
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let started = Instant::now();
    let topics = create_topics(&brokers, PARTITIONS).await;
    let worker = WorkerProcess::start(
        &brokers,
        &topics,
        &unique("group"),
        &[("NEWSFLOW__KAFKA__STATISTICS_INTERVAL_MS", "1000")],
    );
    worker.wait_ready(Duration::from_secs(30)).await;

    let rule_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml");
    let prom = PrometheusServer::start(
        &prometheus,
        &format!("127.0.0.1:{}", worker.port),
        &rule_file,
    )
    .await;
    prom.wait_for(
        r#"up{job="newsflow"}"#,
        |v| v == 1.0,
        Duration::from_secs(20),
    )
    .await;

    // Two batches a few scrapes apart, so the counters (including the per-topic ones that
    // only appear with the first record) increase between samples inside the rate window;
    // poison in each so the dead-letter series move too.
    let timeout = Duration::from_secs(30);
    let first = batch(0, 20, &[("p-empty-1", b""), ("p-json", b"{\"id\": ")]);
    produce(&brokers, &topics.input, &first).await;
    prom.wait_for(
        "sum(newsflow_events_produced_total)",
        |v| v >= 20.0,
        timeout,
    )
    .await;
    prom.wait_for(
        "sum(newsflow_messages_dead_lettered_total)",
        |v| v >= 2.0,
        timeout,
    )
    .await;
    let second = batch(20, 40, &[("p-empty-2", b"")]);
    produce(&brokers, &topics.input, &second).await;
    prom.wait_for(
        "sum(newsflow_events_produced_total)",
        |v| v >= 40.0,
        timeout,
    )
    .await;
    prom.wait_for(
        "sum(newsflow_messages_dead_lettered_total)",
        |v| v >= 3.0,
        timeout,
    )
    .await;
    // Caught up: the lag gauges have been refreshed after the last record.
    prom.wait_for(
        "sum(newsflow_consumer_lag_messages) + sum(newsflow_inflight_messages)",
        |v| v == 0.0,
        timeout,
    )
    .await;
    eprintln!(
        "prometheus: both batches scraped {:.1} s into the test",
        started.elapsed().as_secs_f64()
    );

    // Every series of the contract is scraped, under job="newsflow" (the statistics-driven
    // ones appear with librdkafka's statistics, every second here; allow a few).
    let expected: Vec<String> = COUNTERS_AND_GAUGES
        .iter()
        .map(|m| m.to_string())
        .chain(HISTOGRAMS.iter().flat_map(|h| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .map(move |s| format!("{h}{s}"))
        }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (scraped, missing) = loop {
        let scraped: BTreeSet<String> = prom
            .query(r#"count by (__name__) ({__name__=~"newsflow_.+", job="newsflow"})"#)
            .await
            .unwrap()
            .iter()
            .map(|s| s["metric"]["__name__"].as_str().unwrap().to_string())
            .collect();
        let missing: Vec<String> = expected
            .iter()
            .filter(|m| !scraped.contains(*m))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (scraped, missing);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if !missing.is_empty() {
        let (_, text) = worker.get("/metrics").await.unwrap_or_default();
        let exported: Vec<&str> = text
            .lines()
            .filter(|l| missing.iter().any(|m| l.contains(m.as_str())))
            .collect();
        panic!(
            "not scraped: {missing:?}\nthe worker's /metrics has for them: {exported:#?}\n\
             scraped: {scraped:?}"
        );
    }

    // Every series has at least three samples inside the rate window, so rate(), increase()
    // and deriv() (which need two) have data for all of them.
    for name in &expected {
        prom.wait_for(
            &format!(r#"min(count_over_time({name}{{job="newsflow"}}[{RATE_INTERVAL}]))"#),
            |v| v >= 3.0,
            Duration::from_secs(15),
        )
        .await;
    }

    // The values agree with what was pushed, with the labels the dashboard groups by.
    let input = &topics.input;
    let output = &topics.output;
    assert_eq!(
        prom.value(&format!(
            r#"sum(newsflow_messages_consumed_total{{topic="{input}"}})"#
        ))
        .await,
        43.0
    );
    assert_eq!(
        prom.value(&format!(
            r#"sum(newsflow_events_produced_total{{topic="{output}"}})"#
        ))
        .await,
        40.0
    );
    assert_eq!(
        prom.value(r#"newsflow_messages_dead_lettered_total{reason="empty"}"#)
            .await,
        2.0
    );
    assert_eq!(
        prom.value(r#"newsflow_messages_dead_lettered_total{reason="invalid_json"}"#)
            .await,
        1.0
    );
    for metric in [
        "newsflow_consumer_lag_messages",
        "newsflow_consumer_committed_lag_messages",
        "newsflow_consumer_lag_seconds",
    ] {
        assert_eq!(
            prom.value(&format!(
                r#"count(count by (partition) ({metric}{{topic="{input}"}}))"#
            ))
            .await,
            f64::from(PARTITIONS),
            "{metric}: one series per partition of {input}"
        );
    }
    assert_eq!(
        prom.value("newsflow_assigned_partitions").await,
        f64::from(PARTITIONS)
    );
    assert_eq!(prom.value("newsflow_ready").await, 1.0);
    assert!(
        !prom
            .values("newsflow_kafka_broker_up == 1")
            .await
            .is_empty(),
        "no librdkafka broker connection is up"
    );
    for stage in ["parse", "normalize", "enrich", "produce"] {
        assert!(
            prom.value(&format!(
                r#"newsflow_stage_duration_seconds_count{{stage="{stage}"}}"#
            ))
            .await
                > 0.0,
            "no {stage} stage duration observed"
        );
    }
    // The rate window holds the increases (else "returns data" would only prove zeros).
    for counter in [
        "newsflow_events_produced_total",
        "newsflow_messages_consumed_total",
        "newsflow_messages_dead_lettered_total",
        "newsflow_end_to_end_latency_seconds_count",
    ] {
        let rate = prom
            .value(&format!("sum(rate({counter}[{RATE_INTERVAL}]))"))
            .await;
        assert!(
            rate > 0.0,
            "rate of {counter} over {RATE_INTERVAL} is {rate}"
        );
    }

    // The checks below can fail: an unknown metric is empty, bad PromQL is an error.
    assert!(
        prom.values("newsflow_no_such_metric_total")
            .await
            .is_empty()
    );
    assert!(prom.query("sum(rate(newsflow_ready[30s])").await.is_err());

    // Every dashboard and alert expression parses; dashboard queries and alert signals
    // return data. (`alert` expressions are their thresholded forms: empty unless firing.)
    let exprs = promql_expressions();
    for source in ["dashboard", "alert", "alert-signal"] {
        assert!(
            exprs.iter().any(|(s, _, _)| s == source),
            "--print-promql printed no `{source}` expression"
        );
    }
    let mut failures = Vec::new();
    let mut empty_allowed = Vec::new();
    for (source, name, expr) in &exprs {
        match prom.query(expr).await {
            Err(e) => failures.push(format!("{source} {name:?}: {expr}\n    error: {e}")),
            Ok(result) if result.is_empty() && source != "alert" => {
                match MAY_BE_EMPTY.iter().find(|(n, _)| n == name) {
                    Some((_, why)) => empty_allowed.push(format!("{name}: {why}")),
                    None => failures.push(format!("{source} {name:?}: {expr}\n    no data")),
                }
            }
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} PromQL expressions failed against a live worker:\n  {}",
        failures.len(),
        exprs.len(),
        failures.join("\n  ")
    );
    if !empty_allowed.is_empty() {
        eprintln!("empty (allowed): {empty_allowed:?}");
    }

    // Prometheus itself evaluates the alert rules without error, and none is pending or
    // firing for this healthy worker.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rules = loop {
        let body = prom.api("rules", &[]).await;
        let rules: Vec<Value> = body["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        if rules.iter().all(|r| r["health"] != "unknown") || Instant::now() > deadline {
            break rules;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        !rules.is_empty(),
        "prometheus loaded no rule from {}",
        rule_file.display()
    );
    let mut active_allowed = Vec::new();
    for r in &rules {
        assert_eq!(r["health"], "ok", "rule {}: {}", r["name"], r["lastError"]);
        if r["state"] != "inactive" {
            match MAY_BE_ACTIVE.iter().find(|(n, _)| r["name"] == *n) {
                Some((name, why)) => active_allowed.push(format!("{name} ({}): {why}", r["state"])),
                None => panic!(
                    "alert {} is {} on a healthy worker: {}",
                    r["name"], r["state"], r["alerts"]
                ),
            }
        }
    }
    if !active_allowed.is_empty() {
        eprintln!("active (allowed): {active_allowed:#?}");
    }
    eprintln!(
        "prometheus: {} series names scraped, {} PromQL expressions and {} alert rules checked in {:.1} s",
        scraped.len(),
        exprs.len(),
        rules.len(),
        started.elapsed().as_secs_f64()
    );
}
