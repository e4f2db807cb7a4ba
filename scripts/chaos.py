#!/usr/bin/env python3
"""Chaos run of newsflow on a real broker (Tansu): run through scripts/chaos.sh.

Three workers share one consumer group. A producer writes keyed updates (many versions of
each key) for the whole run while workers are SIGKILLed, SIGTERMed, restarted, leave and
join, and the broker is restarted. At the end every worker runs until the group has
committed everything, then the output is checked:

  * every input record came out (as an event or a dead-letter record);
  * for every key, the last event out is the last version in;
  * the group's committed offsets equal the input's end offsets;
  * no record came from a worker process that did not own its input partition then: each
    record's `newsflow.worker` header names the process, its log says when it was assigned
    and revoked the partition (the revoke line comes after its drain), and the record's
    timestamp (taken when the worker handed it to its producer) must fall inside one of
    those spans;

and it prints the duplicate share, the per-key reorderings seen along the way, and for each
fault the time until everything written before it was committed (catch-up).
Exit status 0 only when every check holds.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

INPUT, OUTPUT, DEAD_LETTER = "chaos.raw", "chaos.enriched", "chaos.dead-letter"
GROUP = "chaos"
PARTITIONS = 6
BODY = (
    "The city council of Springfield met on Tuesday to discuss the new budget. "
    "Mayor Jane Smith said the plan would fund schools and roads, and members of the "
    "Springfield Business Association welcomed it. Revision {v} of {key}."
)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Broker:
    """Tansu on a fixed port with one SQLite file, so a restart keeps every topic."""

    def __init__(self, tansu, workdir):
        self.tansu, self.workdir, self.port = tansu, workdir, free_port()
        self.proc = None
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self):
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(os.path.join(self.workdir, "broker.log"), "ab")
        self.proc = subprocess.Popen(
            [self.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "sqlite://broker.db"],
            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)
        if not wait_port(self.port):
            raise RuntimeError("tansu did not start listening")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Worker:
    def __init__(self, idx, binary, config, workdir, bootstrap):
        self.idx, self.binary, self.config, self.workdir = idx, binary, config, workdir
        self.bootstrap = bootstrap
        self.proc = None
        self.exits = []
        self.runs = []  # one per process: {"writer", "log", "ended"}
        self.all_runs = []  # shared by every worker (set by main)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        self.ended()
        env = dict(os.environ)
        env.update({
            "NEWSFLOW__HTTP__LISTEN": f"127.0.0.1:{free_port()}",
            "NEWSFLOW__KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "HOSTNAME": f"worker-{self.idx}",
        })
        path = os.path.join(self.workdir, f"worker-{self.idx}-starting.log")
        out = open(path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "run", "--config", self.config, "--log-format", "json"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
        named = os.path.join(self.workdir, f"worker-{self.idx}-{self.proc.pid}.log")
        os.rename(path, named)  # the child keeps writing to it
        run = {"writer": f"worker-{self.idx}/{self.proc.pid}", "log": named, "ended": None}
        self.runs.append(run)
        self.all_runs.append(run)
        save_runs(self.workdir, self.all_runs)

    def ended(self):
        """Notes when the last process ended (at the latest: now)."""
        if self.runs and self.runs[-1]["ended"] is None and not self.running():
            self.runs[-1]["ended"] = time.time()
            save_runs(self.workdir, self.all_runs)

    def stop(self, sig):
        if not self.running():
            self.ended()
            return
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.ended()
        self.exits.append((signal.Signals(sig).name, code))


def save_runs(workdir, runs):
    """Every worker process of the run, for the check (`--check-only` reads it again)."""
    with open(os.path.join(workdir, "runs.json"), "w") as f:
        json.dump(runs, f)


PARTITION = re.compile(r'\("([^"]+)", (\d+)\)')


def ownership(run):
    """{partition: [(from, to)]}: when one worker process owned each input partition, from
    its log (assigned; revoked, which is logged after the drain; or the process's end)."""
    spans, since = {}, {}
    with open(run["log"], errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            fields = entry.get("fields", entry)  # newsflow's JSON logs: fields at the top
            message = fields.get("message")
            if message not in ("Partitions assigned", "Partitions revoked"):
                continue
            ts = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
            for topic, p in PARTITION.findall(str(fields.get("partitions", ""))):
                if topic != INPUT:
                    continue
                p = int(p)
                if message == "Partitions assigned":
                    since.setdefault(p, ts)
                elif p in since:
                    spans.setdefault(p, []).append((since.pop(p), ts))
    for p, ts in since.items():
        spans.setdefault(p, []).append((ts, run["ended"] or time.time()))
    return spans


def foreign_records(runs, records, slack=0.5):
    """Records whose writer did not own their input partition when it wrote them."""
    owners = {run["writer"]: ownership(run) for run in runs}
    foreign = []
    for partition, when, writer in records:
        spans = owners.get(writer, {}).get(partition, [])
        if not any(a - slack <= when <= b + slack for a, b in spans):
            foreign.append((writer, partition, round(when, 3)))
    return foreign


class Feed(threading.Thread):
    """Keyed updates: each record is the next version of a random key."""

    def __init__(self, bootstrap, keys, rate):
        super().__init__(daemon=True)
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "log_level": 0, "enable.idempotence": True, "acks": "all",
            "message.timeout.ms": 0, "linger.ms": 5,
        })
        self.keys, self.rate = keys, rate
        self.version = {k: 0 for k in keys}
        # Counts only: the check reads what was written from the input topic itself.
        # Delivery callbacks run in this thread (from poll and flush).
        self.written, self.failed = 0, 0
        self.halt = threading.Event()

    def delivered(self, err, _msg):
        if err is not None:
            self.failed += 1
        else:
            self.written += 1

    def run(self):
        started, sent = time.time(), 0
        while not self.halt.is_set():
            key = random.choice(self.keys)
            self.version[key] += 1
            v = self.version[key]
            value = json.dumps({"id": key, "url": f"https://example.com/{key}",
                                "title": f"{key} revision {v}",
                                "body": BODY.format(v=v, key=key)})
            while True:
                try:
                    self.producer.produce(INPUT, key=key, value=value,
                                          on_delivery=self.delivered)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            sent += 1
            self.producer.poll(0)
            due = started + sent / self.rate
            if due > time.time():
                time.sleep(due - time.time())
        while self.producer.flush(5) > 0:
            log("input producer still flushing")


def admin_consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "log_level": 0,
                     "enable.auto.commit": False})


def positions(bootstrap):
    """(committed, ends) of the input partitions, or None while the broker cannot say."""
    c = admin_consumer(bootstrap)
    try:
        tps = [TopicPartition(INPUT, p) for p in range(PARTITIONS)]
        committed = {t.partition: t.offset for t in c.committed(tps, timeout=10)}
        ends = {p: c.get_watermark_offsets(TopicPartition(INPUT, p), timeout=10)[1]
                for p in range(PARTITIONS)}
        return committed, ends
    except KafkaException:
        return None
    finally:
        c.close()


class CatchUp(threading.Thread):
    """For each fault: seconds until every input written before it was committed."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.open = []  # (label, started, ends)
        self.done = []  # (label, seconds)
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def fault(self, label):
        started = time.time()
        pos = positions(self.bootstrap)
        if pos is None:
            log(f"broker did not answer; catch-up after {label} not measured")
            return
        with self.lock:
            self.open.append((label, started, pos[1]))

    def run(self):
        while not self.halt.wait(1.0):
            pos = positions(self.bootstrap)
            if pos is None:
                continue
            committed, _ = pos
            now = time.time()
            with self.lock:
                still = []
                for label, started, ends in self.open:
                    if all(committed.get(p, -1) >= e for p, e in ends.items()):
                        self.done.append((label, now - started))
                    else:
                        still.append((label, started, ends))
                self.open = still


def read_all(bootstrap, topic):
    """Every record of `topic`, per partition in order."""
    c = Consumer({"bootstrap.servers": bootstrap, "log_level": 0,
                  "group.id": f"chaos-check-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out = {}
    try:
        for p in range(PARTITIONS):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            records = []
            if high > low:
                c.assign([TopicPartition(topic, p, low)])
                while True:
                    m = c.poll(60.0)  # Tansu can take long to serve a cold read
                    if m is None:
                        raise RuntimeError(f"{topic}[{p}]: read {len(records)} of {high - low}")
                    if m.error():
                        continue
                    records.append(m)
                    if m.offset() + 1 >= high:
                        break
            out[p] = records
    finally:
        c.close()
    return out


def chaos(broker, workers, catchup, duration, rng):
    actions = ["sigkill", "sigkill", "sigterm", "leave", "broker"]
    ends_at = time.time() + duration
    counts = {}
    while time.time() < ends_at:
        time.sleep(rng.uniform(15, 35))
        action = rng.choice(actions)
        counts[action] = counts.get(action, 0) + 1
        if action in ("sigkill", "sigterm"):
            w = rng.choice([w for w in workers if w.running()] or workers)
            log(f"{action} worker {w.idx}")
            catchup.fault(f"{action} worker {w.idx}")
            w.stop(signal.SIGKILL if action == "sigkill" else signal.SIGTERM)
            time.sleep(rng.uniform(1, 5))
            w.start()
        elif action == "leave":
            w = rng.choice(workers)
            log(f"worker {w.idx} leaves (SIGTERM) and joins again later")
            catchup.fault(f"worker {w.idx} leaves")
            w.stop(signal.SIGTERM)
            time.sleep(rng.uniform(10, 25))
            log(f"worker {w.idx} joins")
            w.start()
        else:
            # SIGKILL only: Tansu 0.6.0 on SIGTERM stops its storage service but keeps its
            # listener open, answering every request with UnableToSend (broker.log shows
            # it); that is a broker fault of its own, not a restart.
            sig = signal.SIGKILL
            log(f"broker restart ({signal.Signals(sig).name})")
            catchup.fault(f"broker restart ({signal.Signals(sig).name})")
            broker.stop(sig)
            time.sleep(rng.uniform(2, 8))
            broker.start()
        for w in workers:  # a worker that exited by itself is restarted too
            if not w.running():
                if w.proc is not None:
                    w.exits.append(("self", w.proc.returncode))
                    log(f"worker {w.idx} had exited ({w.proc.returncode}); restarting")
                w.start()
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tansu", required=True)
    ap.add_argument("--newsflow")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=40, help="input records per second")
    ap.add_argument("--keys", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-only", action="store_true",
                    help="check an earlier run's workdir again (its broker storage and logs)")
    args = ap.parse_args()
    if args.check_only:
        check_only(args)
    rng = random.Random(args.seed)
    random.seed(args.seed)

    broker = Broker(args.tansu, args.workdir)
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
    for f in admin.create_topics([NewTopic(t, PARTITIONS, 1)
                                  for t in (INPUT, OUTPUT, DEAD_LETTER)]).values():
        f.result()
    config = os.path.join(args.workdir, "chaos.toml")
    with open(config, "w") as f:
        f.write(f"""
[kafka]
bootstrap_servers = "{broker.bootstrap}"
group_id = "{GROUP}"
session_timeout_ms = 10000
statistics_interval_ms = 5000
[kafka.producer_properties]
"linger.ms" = "5"
[topics]
input = "{INPUT}"
output = "{OUTPUT}"
dead_letter = "{DEAD_LETTER}"
[http]
listen = "127.0.0.1:0"
[shutdown]
drain_timeout_ms = 5000
[log]
level = "info"
""")
    workers = [Worker(i, args.newsflow, config, args.workdir, broker.bootstrap)
               for i in range(3)]
    all_runs = []
    for w in workers:
        w.all_runs = all_runs
    for w in workers:
        w.start()
    keys = [f"k{i:04d}" for i in range(args.keys)]
    feed = Feed(broker.bootstrap, keys, args.rate)
    catchup = CatchUp(broker.bootstrap)
    feed.start()
    catchup.start()
    log(f"chaos for {args.minutes} min: {args.rate:.0f} records/s over {args.keys} keys, "
        f"{PARTITIONS} partitions, 3 workers, broker {broker.bootstrap}")
    started = time.time()
    counts = chaos(broker, workers, catchup, args.minutes * 60, rng)
    feed.halt.set()
    feed.join()
    log(f"input done: {feed.written} records in {time.time() - started:.0f} s; "
        "waiting for the group to commit everything")
    for w in workers:
        if not w.running():
            w.start()
    deadline = time.time() + 300
    pos = None
    while time.time() < deadline:
        pos = positions(broker.bootstrap)
        if pos and all(pos[0].get(p, -1) >= e for p, e in pos[1].items()):
            break
        time.sleep(2)
    drained_after = time.time() - started
    catchup.halt.set()
    for w in workers:
        w.stop(signal.SIGTERM)
    info = {
        "minutes": args.minutes, "rate": args.rate, "faults": counts,
        "exits": {w.idx: w.exits for w in workers}, "refused_inputs": feed.failed,
        "drained_after": drained_after, "catchup": catchup.done,
        "unmeasured": len(catchup.open),
    }
    with open(os.path.join(args.workdir, "info.json"), "w") as f:
        json.dump(info, f)
    ok = check(broker, all_runs, info)
    broker.stop()
    sys.exit(0 if ok else 1)


def inputs_of(bootstrap):
    """{(partition, offset): (key, version)} from the input topic itself."""
    inputs = {}
    for p, records in read_all(bootstrap, INPUT).items():
        for m in records:
            title = json.loads(m.value())["title"]
            inputs[(p, m.offset())] = (m.key().decode(), int(title.rsplit(" ", 1)[1]))
    return inputs


def check(broker, runs, info):
    """Reads the topics and the group's offsets, prints the figures; True when all hold."""
    pos = None
    for _ in range(10):
        pos = positions(broker.bootstrap)
        if pos:
            break
    if pos is None:
        log("the broker does not answer offset requests any more (see broker.log)")
        return False
    committed, ends = pos
    inputs = inputs_of(broker.bootstrap)
    outputs = read_all(broker.bootstrap, OUTPUT)
    dead = read_all(broker.bootstrap, DEAD_LETTER)

    covered, produced = {}, 0
    last_out = {}  # key -> input offset of its last event out
    reorders = 0
    written = []  # (input partition, when handed to the producer, writer)

    def note_writer(m, partition):
        h = {k: v.decode() for k, v in (m.headers() or [])}
        written.append((partition, m.timestamp()[1] / 1000.0, h.get("newsflow.worker")))

    for records in outputs.values():
        seen = {}
        for m in records:
            e = json.loads(m.value())
            src = (e["provenance"]["partition"], e["provenance"]["offset"])
            note_writer(m, src[0])
            covered[src] = covered.get(src, 0) + 1
            produced += 1
            key = e["article_id"]
            if key in seen and src[1] < seen[key]:
                reorders += 1
            seen[key] = src[1]
            last_out[key] = src[1]
    for records in dead.values():
        for m in records:
            h = {k: v.decode() for k, v in (m.headers() or [])}
            src = (int(h["newsflow.source.partition"]), int(h["newsflow.source.offset"]))
            note_writer(m, src[0])
            covered[src] = covered.get(src, 0) + 1
            produced += 1
    last_in = {}  # key -> (version, input offset) of its last version in
    for (_, off), (key, version) in inputs.items():
        if version > last_in.get(key, (-1, -1))[0]:
            last_in[key] = (version, off)
    missing = [src for src in inputs if src not in covered]
    wrong_last = [k for k, (_, off) in last_in.items() if last_out.get(k) != off]
    not_committed = {p: (committed.get(p), e) for p, e in ends.items()
                     if committed.get(p) != e}
    dup = produced - len(covered)
    foreign = foreign_records(runs, written) if runs else None

    print()
    print("== chaos run ==")
    if info:
        print(f"duration: {info['minutes']:.1f} min of faults at {info['rate']:.0f} records/s, "
              f"everything committed {info['drained_after']:.0f} s after the start")
        print(f"faults: {info['faults']}")
        print(f"worker exits: {info['exits']}")
        print(f"inputs refused to the producer: {info['refused_inputs']}")
    print(f"input records: {len(inputs)}, keys: {len(last_in)}, worker processes: {len(runs)}")
    print(f"records out: {produced} (events and dead-letter records), "
          f"dead-letter: {sum(len(r) for r in dead.values())}")
    print(f"duplicates: {dup} = {100.0 * dup / max(1, len(inputs)):.1f} % of the input")
    print(f"per-key reorderings along the way (an earlier version out after a later one, "
          f"the redo after a crash): {reorders}")
    if info:
        secs = sorted(s for _, s in info["catchup"])
        for label, s in info["catchup"]:
            print(f"  catch-up after {label}: {s:.1f} s")
        if secs:
            print(f"catch-up: median {secs[len(secs) // 2]:.1f} s, max {secs[-1]:.1f} s "
                  f"over {len(secs)} faults ({info['unmeasured']} never measured)")
    print(f"missing inputs: {len(missing)} {missing[:10]}")
    print(f"keys whose last event is not their last version: {len(wrong_last)} "
          f"{wrong_last[:10]}")
    print(f"partitions with committed != end: {not_committed}")
    if foreign is None:
        print("records written by a worker that did not own their input partition then: "
              "not checked (no runs.json)")
    else:
        print(f"records written by a worker that did not own their input partition then: "
              f"{len(foreign)} {foreign[:10]}")
    ok = (not missing and not wrong_last and not not_committed and not foreign
          and not (info or {}).get("refused_inputs"))
    print("RESULT:", "PASS" if ok else "FAIL")
    return ok


def check_only(args):
    """Checks an earlier run's broker storage and logs again (`--check-only`)."""
    broker = Broker(args.tansu, args.workdir)
    broker.start()

    def load(name, default):
        path = os.path.join(args.workdir, name)
        if not os.path.exists(path):
            return default
        with open(path) as f:
            return json.load(f)

    ok = check(broker, load("runs.json", []), load("info.json", None))
    broker.stop(signal.SIGKILL)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
