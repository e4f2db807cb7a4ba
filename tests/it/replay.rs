//! `newsflow replay` against the real broker.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

use crate::helpers::*;

const PARTITIONS: i32 = 2;

/// A `newsflow replay` command wired to the broker and topics.
fn replay_cmd(brokers: &str, topics: &Topics, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsflow"));
    cmd.arg("replay")
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        ])
        .args(args)
        .env("NEWSFLOW__KAFKA__BOOTSTRAP_SERVERS", brokers)
        .env("NEWSFLOW__KAFKA__GROUP_ID", "live-group-of-replay-tests")
        .env("NEWSFLOW__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("NEWSFLOW__TOPICS__INPUT", &topics.input)
        .env("NEWSFLOW__TOPICS__OUTPUT", &topics.output)
        .env("NEWSFLOW__TOPICS__DEAD_LETTER", &topics.dead_letter)
        .env("NEWSFLOW__HTTP__LISTEN", "127.0.0.1:0")
        .env("NEWSFLOW__SHUTDOWN__DRAIN_TIMEOUT_MS", "5000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run_replay(brokers: &str, topics: &Topics, args: &[&str]) -> Output {
    let out = replay_cmd(brokers, topics, args).output().unwrap();
    eprintln!("replay stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The JSON lines a replay printed: the plan first, the summary last.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Produces articles with explicit record timestamps.
async fn produce_at(brokers: &str, topic: &str, ids: std::ops::Range<usize>, ts_ms: i64) {
    let p = producer(brokers);
    for n in ids {
        let id = format!("r{n}");
        let value = article(&id, n);
        let record = FutureRecord::to(topic)
            .key(&id)
            .payload(&value)
            .timestamp(ts_ms);
        p.send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

fn event_ids_by_article(
    brokers: &str,
    topic: &str,
    count: usize,
) -> HashMap<String, (String, i64, Option<String>)> {
    read_topic(brokers, topic, count, Duration::from_secs(60))
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            (
                v["article_id"].as_str().unwrap().to_string(),
                (
                    v["event_id"].as_str().unwrap().to_string(),
                    v["provenance"]["offset"].as_i64().unwrap(),
                    header(m, "newsflow.replay.id"),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_from_a_time_processes_exactly_the_records_at_or_after_it_and_ends_while_producers_write()
 {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let t0 = chrono::Utc::now().timestamp_millis() - 3_600_000;
    produce_at(&brokers, &topics.input, 0..20, t0).await;
    produce_at(&brokers, &topics.input, 20..50, t0 + 60_000).await;
    let from = chrono::DateTime::from_timestamp_millis(t0 + 30_000)
        .unwrap()
        .to_rfc3339();

    // A producer keeps writing while the replay runs; the replay must still end.
    let writer_brokers = brokers.clone();
    let writer_topic = topics.input.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        let mut n = 1000;
        while !writer_stop.is_cancelled() {
            produce(
                &writer_brokers,
                &writer_topic,
                &[(format!("r{n}"), article(&format!("r{n}"), n))],
            )
            .await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (b, t) = (brokers.clone(), topics.clone());
    let out = tokio::task::spawn_blocking(move || run_replay(&b, &t, &["--from", &from]))
        .await
        .unwrap();
    stop.cancel();
    writer.await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    let plan = &lines[0];
    let summary = lines.last().unwrap();
    assert_eq!(summary["complete"], true, "{summary}");

    // Exactly the records in [start, end) per partition, which include every r20..r49.
    let total = plan["total"].as_i64().unwrap() as usize;
    let events = event_ids_by_article(&brokers, &topics.output, total);
    assert_eq!(events.len(), total);
    let got: HashSet<&String> = events.keys().collect();
    for n in 0..20 {
        assert!(!got.contains(&format!("r{n}")), "r{n} is before --from");
    }
    for n in 20..50 {
        assert!(got.contains(&format!("r{n}")), "r{n} missing");
    }
    for p in plan["partitions"].as_array().unwrap() {
        let (start, end) = (p["start"].as_i64().unwrap(), p["end"].as_i64().unwrap());
        let part = p["partition"].as_i64().unwrap();
        let in_part = read_topic(&brokers, &topics.output, total, Duration::from_secs(5))
            .iter()
            .map(|m| serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap())
            .filter(|v| v["provenance"]["partition"].as_i64() == Some(part))
            .map(|v| v["provenance"]["offset"].as_i64().unwrap())
            .collect::<HashSet<_>>();
        assert_eq!(
            in_part,
            (start..end).collect::<HashSet<_>>(),
            "partition {part}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_leaves_live_offsets_alone_and_gives_the_same_event_ids() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let records = articles("e", 0..40);
    produce(&brokers, &topics.input, &records).await;
    let live_group = unique("live");
    let mut live = WorkerProcess::start(&brokers, &topics, &live_group, &[]);
    live.wait_ready(Duration::from_secs(30)).await;
    let live_events = event_ids_by_article(&brokers, &topics.output, 40);
    live.signal("TERM");
    assert_eq!(live.wait_exit(Duration::from_secs(30)), Some(0));
    let before = committed(&brokers, &live_group, &topics.input, PARTITIONS);

    let replay_out = unique("replay-out");
    crate::helpers::create_topic(&brokers, &replay_out, PARTITIONS).await;
    let (b, t, o, g) = (
        brokers.clone(),
        topics.clone(),
        replay_out.clone(),
        live_group.clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = replay_cmd(
            &b,
            &t,
            &[
                "--from",
                "earliest",
                "--output-topic",
                &o,
                "--group",
                &format!("{g}-replay"),
            ],
        );
        cmd.env("NEWSFLOW__KAFKA__GROUP_ID", &g);
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = event_ids_by_article(&brokers, &replay_out, 40);
    assert_eq!(replayed.len(), 40);
    for (article, (event_id, _, replay_header)) in &replayed {
        assert_eq!(&live_events[article].0, event_id, "{article}");
        assert_eq!(
            replay_header.as_deref(),
            Some(format!("{live_group}-replay").as_str())
        );
        assert_eq!(
            live_events[article].2, None,
            "live events carry no replay header"
        );
    }
    assert_eq!(
        committed(&brokers, &live_group, &topics.input, PARTITIONS),
        before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_interrupted_by_sigterm_and_resumed_outputs_every_record() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let records = articles("i", 0..200);
    produce(&brokers, &topics.input, &records).await;
    let group = unique("replay");
    let child = replay_cmd(
        &brokers,
        &topics,
        &["--from", "earliest", "--group", &group, "--rate", "40"],
    )
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let first = child.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first_summary = json_lines(&first).last().cloned().unwrap();
    assert_eq!(
        first_summary["complete"], false,
        "the replay should have been interrupted: {first_summary}"
    );
    let until = String::from_utf8_lossy(&first.stdout)
        .lines()
        .find_map(|l| l.split("--until-offsets ").nth(1).map(str::to_string))
        .unwrap();

    let (b, t, g) = (brokers.clone(), topics.clone(), group.clone());
    let second = tokio::task::spawn_blocking(move || {
        run_replay(
            &b,
            &t,
            &["--resume", "--group", &g, "--until-offsets", &until],
        )
    })
    .await
    .unwrap();
    assert_eq!(second.status.code(), Some(0));
    let resumed_plan = &json_lines(&second)[0];
    assert!(
        resumed_plan["total"].as_i64().unwrap() < 200,
        "resume should start after the committed offsets: {resumed_plan}"
    );
    let events = event_ids_by_article(&brokers, &topics.output, 200);
    let missing: Vec<usize> = (0..200)
        .filter(|n| !events.contains_key(&format!("i{n}")))
        .collect();
    assert!(missing.is_empty(), "missing after resume: {missing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_plans_and_edge_times_and_unknown_topics_behave() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let t0 = chrono::Utc::now().timestamp_millis() - 600_000;
    produce_at(&brokers, &topics.input, 0..30, t0).await;
    let ends = high_watermarks(&brokers, &topics.input, PARTITIONS);
    let (b, t) = (brokers.clone(), topics.clone());
    let (dry, before, unknown, into_itself) = tokio::task::spawn_blocking(move || {
        let before = chrono::DateTime::from_timestamp_millis(t0 - 60_000)
            .unwrap()
            .to_rfc3339();
        (
            run_replay(&b, &t, &["--from", "earliest", "--dry-run"]),
            run_replay(&b, &t, &["--from", &before, "--dry-run"]),
            run_replay(
                &b,
                &t,
                &["--from", "earliest", "--topic", "no-such-topic-here"],
            ),
            run_replay(&b, &t, &["--from", "earliest", "--output-topic", &t.input]),
        )
    })
    .await
    .unwrap();
    for out in [&dry, &before] {
        assert_eq!(out.status.code(), Some(0));
        let plan = &json_lines(out)[0];
        assert_eq!(plan["total"], 30, "{plan}");
        for p in plan["partitions"].as_array().unwrap() {
            assert_eq!(p["start"], 0);
            assert_eq!(
                p["end"].as_i64().unwrap(),
                ends[&(p["partition"].as_i64().unwrap() as i32)]
            );
        }
    }
    assert!(
        read_topic(&brokers, &topics.output, 1, Duration::from_secs(2)).is_empty(),
        "dry run must not process"
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("topic `no-such-topic-here` does not exist")
    );
    // A replay into the topic it reads would feed itself.
    assert_eq!(into_itself.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&into_itself.stderr).contains("--output-topic"),
        "{}",
        String::from_utf8_lossy(&into_itself.stderr)
    );
    assert!(
        read_topic(&brokers, &topics.input, 31, Duration::from_secs(2)).len() == 30,
        "nothing may be written into the replayed topic"
    );
}

/// Isolated because of a broker bug: Tansu 0.6.0 answers ListOffsets for a timestamp after
/// the last record with offset 0 instead of Kafka's "no offset" (-1), so the plan starts at
/// the beginning. Run it against a real Kafka with
/// `cargo test --test it -- --ignored replay_from_a_time_after`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "Tansu 0.6.0 returns offset 0 for ListOffsets(timestamp after the last record); see README"]
async fn replay_from_a_time_after_the_last_record_processes_nothing() {
    let Some(brokers) = brokers() else { return };
    let topics = create_topics(&brokers, PARTITIONS).await;
    let t0 = chrono::Utc::now().timestamp_millis() - 600_000;
    produce_at(&brokers, &topics.input, 0..10, t0).await;
    let after = chrono::DateTime::from_timestamp_millis(t0 + 60_000)
        .unwrap()
        .to_rfc3339();
    let (b, t) = (brokers.clone(), topics.clone());
    let out = tokio::task::spawn_blocking(move || run_replay(&b, &t, &["--from", &after]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out)[0]["total"], 0);
    assert!(read_topic(&brokers, &topics.output, 1, Duration::from_secs(2)).is_empty());
}
