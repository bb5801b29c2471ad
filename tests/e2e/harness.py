"""The pieces the end-to-end test and `scripts/stack.sh` share: rendering the repository's
Prometheus and Alertmanager configuration for 127.0.0.1, running the processes, and talking to
Prometheus and Alertmanager.

Rewrites are explicit and listed: every change made to a committed file is appended to
`Rendered.changes` (printed by the test and by `stack.sh up`). Only host names, ports, secret
file paths, intervals and (for the test) `for:` durations are changed; rules, routes, receivers,
inhibitions and templates are loaded as committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "prometheus"
AM_DIR = ROOT / "alertmanager"
MODEL_DIR = ROOT / "models" / "breast-cancer"
# The library the API's own settings name (relative to the repository root).
ONNXRUNTIME = ROOT / yaml.safe_load(
    (ROOT / "crates" / "inference-api" / "configuration" / "base.yaml").read_text())["model"]["onnxruntime_path"]
RELEASE = ROOT / "target" / "release"

PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER_BIN = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def sys_python() -> str:
    """The interpreter running us (the repository's .venv when started by scripts/e2e.sh)."""
    return sys.executable


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (closed again, so a tiny race is possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Ports:
    api: int
    exporter: int
    traffic: int
    prometheus: int
    alertmanager: int
    smtp: int
    webhook: int

    @classmethod
    def free(cls) -> Ports:
        return cls(**{name: free_port() for name in cls.__dataclass_fields__})


@dataclass
class Intervals:
    """Everything time-related the rendering may shorten."""

    scrape: str = "1s"
    evaluation: str = "1s"
    group_wait: str = "1s"
    group_interval: str = "2s"
    # Alert name -> new `for:`; None keeps the committed durations.
    for_override: Callable[[str, str], str] | None = None


def seconds(duration: str) -> float:
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    if not m or not duration:
        raise ValueError(f"unsupported duration {duration!r}")
    h, mi, s = (int(x or 0) for x in m.groups())
    return h * 3600 + mi * 60 + s


@dataclass
class Rendered:
    prometheus_config: Path
    alertmanager_config: Path
    slack_secret: Path
    changes: list[str] = field(default_factory=list)
    for_durations: dict[str, str] = field(default_factory=dict)  # alert -> `for:` as rendered


def render(work: Path, ports: Ports, intervals: Intervals, slack_url: str, rules_in_place: bool = False) -> Rendered:
    """Writes prometheus/ and alertmanager/ configuration for this machine into `work`.

    rules_in_place: point Prometheus at the repository's rule files and Alertmanager at its
    templates (for `stack.sh`, so edits apply on reload); otherwise copy them into `work`
    (the test, which may shorten `for:`).
    """
    changes: list[str] = []
    prom_dir = work / "prometheus"
    am_dir = work / "alertmanager"
    secrets = work / "secrets"
    for d in (prom_dir, am_dir, secrets):
        d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ prometheus.yml
    prom = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    # Rewrite: global scrape and evaluation intervals (the recording and alert groups have no
    # `interval:` of their own, so the evaluation interval applies to every rule).
    for key, value in (("scrape_interval", intervals.scrape), ("evaluation_interval", intervals.evaluation)):
        changes.append(f"prometheus.yml global.{key}: {prom['global'][key]} -> {value}")
        prom["global"][key] = value
    # Rewrite: the Alertmanager address (compose host name -> 127.0.0.1 and the port we picked).
    for am in prom["alerting"]["alertmanagers"]:
        for sc in am["static_configs"]:
            new = [f"127.0.0.1:{ports.alertmanager}"]
            changes.append(f"prometheus.yml alerting target: {sc['targets']} -> {new}")
            sc["targets"] = new
    targets = {
        "inference-api": ports.api,
        "exporter": ports.exporter,
        "traffic-gen": ports.traffic,
        "prometheus": ports.prometheus,
        "alertmanager": ports.alertmanager,
    }
    seen_jobs = set()
    for job in prom["scrape_configs"]:
        name = job["job_name"]
        seen_jobs.add(name)
        if name not in targets:
            raise AssertionError(f"prometheus.yml has a scrape job {name!r} the harness does not know how to run")
        new = [f"127.0.0.1:{targets[name]}"]
        if "dns_sd_configs" in job:
            # Rewrite: host name. The compose service name is resolved by Docker's DNS, which does
            # not exist here (and Prometheus' DNS SD asks the resolv.conf servers, never
            # /etc/hosts), so the one replica becomes a static target: same job name, same
            # metrics_path, only the address differs.
            old = [f"{n}:{sd['port']}" for sd in job["dns_sd_configs"] for n in sd["names"]]
            changes.append(f"prometheus.yml job {name}: dns_sd_configs {old} -> static_configs {new}")
            del job["dns_sd_configs"]
            job["static_configs"] = [{"targets": new}]
        else:
            # Rewrite: host name and port of a static target.
            for sc in job["static_configs"]:
                changes.append(f"prometheus.yml job {name}: {sc['targets']} -> {new}")
                sc["targets"] = new
    missing_jobs = set(targets) - seen_jobs
    if missing_jobs:
        raise AssertionError(f"prometheus.yml lost scrape jobs {sorted(missing_jobs)}")

    # ------------------------------------------------------------------ rule files
    for_durations: dict[str, str] = {}
    rule_paths = []
    for pattern in prom["rule_files"]:
        for src in sorted(PROM_DIR.glob(pattern)):
            doc = yaml.safe_load(src.read_text())
            for group in doc["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule:
                        old = rule.get("for", "0s")
                        new = intervals.for_override(rule["alert"], old) if intervals.for_override else old
                        for_durations[rule["alert"]] = new
                        if new != old:
                            # Rewrite: the alert's `for:` (shortened so the test stays bounded).
                            changes.append(f"{src.relative_to(ROOT)} {rule['alert']}: for {old} -> {new}")
                            rule["for"] = new
                if "interval" in group:
                    # Rewrite: a group's own evaluation interval -> the global one.
                    changes.append(f"{src.relative_to(ROOT)} group {group['name']}: interval {group['interval']} -> global")
                    del group["interval"]
            if rules_in_place and not any(c.startswith(str(src.relative_to(ROOT))) for c in changes):
                rule_paths.append(str(src))
            else:
                dst = prom_dir / "rules" / src.name
                dst.parent.mkdir(exist_ok=True)
                dst.write_text(yaml.safe_dump(doc, sort_keys=False))
                rule_paths.append(str(dst))
    if not rule_paths:
        raise AssertionError(f"no rule file matched {prom['rule_files']}")
    # Rewrite: rule file paths (the same files, copied next to the rendered config or absolute).
    prom["rule_files"] = rule_paths
    prom_config = prom_dir / "prometheus.yml"
    prom_config.write_text(yaml.safe_dump(prom, sort_keys=False))

    # ------------------------------------------------------------------ alertmanager.yml
    am = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text())
    g = am["global"]
    smtp_password = secrets / "smtp_password"
    smtp_password.write_text("")
    slack_secret = secrets / "slack_webhook_url"
    slack_secret.write_text(slack_url + "\n")
    # Rewrite: SMTP host name and port -> the local SMTP sink.
    changes.append(f"alertmanager.yml global.smtp_smarthost: {g['smtp_smarthost']} -> 127.0.0.1:{ports.smtp}")
    g["smtp_smarthost"] = f"127.0.0.1:{ports.smtp}"
    # Rewrite: secret file paths -> files in the work directory (the Slack one holds the sink's URL).
    for key, path in (("smtp_auth_password_file", smtp_password), ("slack_api_url_file", slack_secret)):
        changes.append(f"alertmanager.yml global.{key}: {g.get(key)} -> {path}")
        g[key] = str(path)
    for receiver in am["receivers"]:
        for sc in receiver.get("slack_configs") or []:
            if "api_url_file" in sc:
                # Rewrite: a receiver-level Slack secret path, like the global one.
                changes.append(f"alertmanager.yml receiver {receiver['name']} api_url_file -> {slack_secret}")
                sc["api_url_file"] = str(slack_secret)
            if "api_url" in sc:
                raise AssertionError("alertmanager.yml has an inline Slack api_url; secrets must come from files")
    # Rewrite: grouping intervals of the top-level route (sub-routes inherit them).
    for key, value in (("group_wait", intervals.group_wait), ("group_interval", intervals.group_interval)):
        changes.append(f"alertmanager.yml route.{key}: {am['route'].get(key)} -> {value}")
        am["route"][key] = value
    for sub in am["route"].get("routes") or []:
        for key in ("group_wait", "group_interval"):
            if key in sub:
                changes.append(f"alertmanager.yml route {sub.get('matchers')}.{key}: {sub[key]} -> {getattr(intervals, key)}")
                sub[key] = getattr(intervals, key)
    # Templates: copied unchanged (or used in place), path rewritten to where they are.
    template_globs = []
    for pattern in am.get("templates") or []:
        if rules_in_place:
            template_globs.append(str(AM_DIR / pattern))
        else:
            for src in sorted(AM_DIR.glob(pattern)):
                dst = am_dir / src.relative_to(AM_DIR)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            template_globs.append(str(am_dir / pattern))
    am["templates"] = template_globs
    am_config = am_dir / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(am, sort_keys=False))
    return Rendered(prom_config, am_config, slack_secret, changes, for_durations)


def rewrite_alert_threshold(rendered: Rendered, alert: str, threshold: float) -> str:
    """Sets the threshold of `alert` (an expression `<query> <op> <number>`) in the rendered copy
    of its rule file, records the change in `rendered.changes` and returns the old threshold.
    The committed rule files are never touched; Prometheus reads the copy on its next reload."""
    for path in sorted((rendered.prometheus_config.parent / "rules").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") != alert:
                    continue
                m = re.fullmatch(r"(.*\S)\s*([<>]=?)\s*([0-9.eE+-]+)", rule["expr"].strip(), flags=re.S)
                if m is None:
                    raise AssertionError(f"{alert}: expression {rule['expr']!r} is not `<query> <op> <number>`")
                rule["expr"] = f"{m.group(1)} {m.group(2)} {threshold:g}"
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                rendered.changes.append(f"{path.name} {alert}: threshold {m.group(3)} -> {threshold:g}")
                return m.group(3)
    raise AssertionError(f"no alert {alert} in the rendered rule files")


# ---------------------------------------------------------------------- processes

class Process:
    """A child in its own process group (so its children die with it), logging to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log = log
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._log_file = open(log, "ab")  # noqa: SIM115 (closed in stop())
        self.started = time.time()
        self.popen = subprocess.Popen(
            self.argv, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env, cwd=cwd, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after `timeout`; returns the exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        if not self._log_file.closed:
            self._log_file.close()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL to the process group, as a crash or the OOM killer would."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        if not self._log_file.closed:
            self._log_file.close()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"(cannot read {self.log}: {e})"
        return "\n".join(text[-lines:])


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 0.25,
             detail: Callable[[], str] | None = None):
    """Polls `check` until it returns something truthy; fails with a message after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 (any failure means "not yet")
            last_error = e
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            if last_error is not None:
                msg += f"\nlast error: {last_error!r}"
            if detail is not None:
                msg += f"\n{detail()}"
            raise AssertionError(msg)
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def api_env(port: int, workers: int = 2, bundle: Path = MODEL_DIR) -> dict:
    """The API's settings: serving the repository that holds the model folder `bundle` (the
    checkout's models/ unless given), `bundle` the default model, looking for new versions every
    second."""
    return {
        "APP_SERVER__HOST": "127.0.0.1",
        "APP_SERVER__PORT": str(port),
        "APP_SERVER__WORKERS": str(workers),
        "APP_MODEL__REPOSITORY": str(bundle.parent),
        "APP_MODEL__DEFAULT": bundle.name,
        "APP_MODEL__POLL_INTERVAL_SECONDS": "1",
        "APP_MODEL__ONNXRUNTIME_PATH": str(ONNXRUNTIME),
    }


def exporter_env(port: int, bundle: Path) -> dict:
    return {
        "APP_SERVER__HOST": "127.0.0.1",
        "APP_SERVER__PORT": str(port),
        # The repository holding the copy: the same models the API serves.
        "APP_COLLECTORS__MODEL_REPOSITORIES": str(bundle.parent),
    }


def prometheus_argv(config: Path, data: Path, port: int, lifecycle: bool = False) -> list[str]:
    argv = [PROMETHEUS_BIN, f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}"]
    if lifecycle:
        argv.append("--web.enable-lifecycle")
    return argv


def alertmanager_argv(config: Path, data: Path, port: int) -> list[str]:
    # An empty --cluster.listen-address turns off the HA gossip listener (default 0.0.0.0:9094).
    return [ALERTMANAGER_BIN, f"--config.file={config}", f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]


def traffic_argv(api_port: int, metrics_port: int, scenario: str, rate: float, duration: str, seed: int,
                 extra: list[str] | None = None) -> list[str]:
    return [RELEASE / "traffic-gen", "run", "--target", f"http://127.0.0.1:{api_port}",
            "--scenario", scenario, "--rate", str(rate), "--duration", duration, "--seed", str(seed),
            "--metrics-addr", f"127.0.0.1:{metrics_port}", "--bundle", MODEL_DIR,
            "--output", "json", "--no-progress", *(extra or [])]


def copy_bundle(dst: Path) -> Path:
    shutil.copytree(MODEL_DIR, dst)
    return dst


def write_version(model_dir: Path, version: str) -> Path:
    """Writes a new version of the model in `model_dir` (its own bundle's model file under a new
    version and a training time of now: what scripts/train_model.py --trained-at now --version
    writes, without its scikit-learn) the safe way: into a hidden folder, then renamed into
    place in one step. Readable by any user (the containers' too), whatever the umask."""
    doc = json.loads((model_dir / "model.json").read_text())
    doc["version"] = version
    doc["trained_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    staging = model_dir / f".{version}.tmp"
    staging.mkdir()
    for name in ("model.onnx", "samples.csv"):
        shutil.copy(model_dir / name, staging / name)
    (staging / "model.json").write_text(json.dumps(doc, indent=2) + "\n")
    staging.chmod(0o755)
    for f in staging.iterdir():
        f.chmod(0o644)
    final = model_dir / version
    staging.rename(final)
    return final


# ---------------------------------------------------------------------- Prometheus / Alertmanager API

class PromApi:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def query(self, promql: str) -> list[dict]:
        """Instant query; raises ValueError with Prometheus' message when the query is rejected."""
        r = requests.get(f"{self.base}/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] in ("vector", "matrix"):
            return data["result"]
        return [{"metric": {}, "value": data["result"]}]  # scalar / string

    def targets(self) -> list[dict]:
        return requests.get(f"{self.base}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]

    def alerts(self) -> list[dict]:
        return requests.get(f"{self.base}/api/v1/alerts", timeout=5).json()["data"]["alerts"]

    def firing(self, name: str) -> list[dict]:
        return [a for a in self.alerts() if a["labels"].get("alertname") == name and a["state"] == "firing"]

    def alert_query(self, name: str) -> str | None:
        """The expression Prometheus currently evaluates for alert `name` (after a reload)."""
        for g in requests.get(f"{self.base}/api/v1/rules", timeout=5).json()["data"]["groups"]:
            for r in g["rules"]:
                if r.get("type") == "alerting" and r.get("name") == name:
                    return r.get("query")
        return None

    def rule_health(self) -> list[str]:
        """Rules whose last evaluation failed."""
        out = []
        for g in requests.get(f"{self.base}/api/v1/rules", timeout=5).json()["data"]["groups"]:
            for r in g["rules"]:
                if r.get("health") not in ("ok", "unknown"):
                    out.append(f"{g['name']}/{r['name']}: {r.get('health')} {r.get('lastError')}")
        return out


class AlertmanagerApi:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def alerts(self) -> list[dict]:
        return requests.get(f"{self.base}/api/v2/alerts", timeout=5).json()
