"""The compose test: docker-compose.yml built and run in the Docker engine, checked as a user would.

Runs the project's own docker-compose.yml with tests/compose/docker-compose.standins.yml (stand-ins
for the third-party images, made by tests/compose/images.sh) under the project name
`modelwatch-test`, and checks: the images build from docker/Dockerfile; every container becomes
healthy; every Prometheus target is up; POST /predict on 127.0.0.1:8000 classifies the held-out
rows as validated, and the Open Inference Protocol with binary tensors gives the same classes; the demo traffic shows in the API's metrics; the exporter reports the host's
root filesystem; logs are bounded; the models come read-only from the checkout; three replicas
are all scraped and all served through :8000; stopping one of them delivers InferenceApiReplicaLost
by email and to Slack; stopping the API delivers InferenceApiDown by email and to Slack, and the
email's runbook link opens the gateway's runbook page at that alert; `down -v` leaves nothing
behind. Grafana has no stand-in and is not started.

Prints one line per check and `N passed, N failed`; always tears the stack down, also on a
failure, SIGTERM or Ctrl-C. Run it through scripts/compose-test.sh.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import PromApi, wait_for, write_version  # noqa: E402  (the end-to-end test's helpers)

sys.path.insert(0, str(ROOT / "scripts" / "monitoring"))
from dashboards import PREDICT_ROUTE_MATCHER  # noqa: E402  (the prediction routes, as rules match them)
PROJECT = os.environ.get("COMPOSE_TEST_PROJECT", "modelwatch-test")
BUNDLE = ROOT / "models" / "breast-cancer"

API = "http://127.0.0.1:8000"
PROMETHEUS = PromApi(9090)
MAILPIT = "http://127.0.0.1:8025"
SLACK_SINK_PORT = int(os.environ.get("SLACK_SINK_PORT", "8026"))
SLACK_SINK = f"http://127.0.0.1:{SLACK_SINK_PORT}"
# Compose services the test leaves out: Grafana has no stand-in image anywhere here.
LEFT_OUT = {"grafana"}
JOBS = {"inference-api", "exporter", "traffic-gen", "prometheus", "alertmanager"}


class Failed(Exception):
    pass


def compose_command() -> list[str]:
    """`docker compose` (v2) when the plugin is there, else `docker-compose` (1.29)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if v2.returncode == 0 else ["docker-compose"]


class ComposeTest:
    def __init__(self) -> None:
        self.compose = compose_command()
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.timings: dict[str, float] = {}
        self.secret_dir = Path(tempfile.mkdtemp(prefix="modelwatch-compose-test."))
        slack_file = self.secret_dir / "slack_webhook_url"
        slack_file.write_text("http://slack-sink:8025/services/T000/B000/compose-test\n")
        # Alertmanager runs as nobody: the secret file must be readable for it (secrets/README.md).
        os.chmod(self.secret_dir, 0o755)
        os.chmod(slack_file, 0o644)
        self.env = dict(os.environ, SLACK_WEBHOOK_URL_FILE=str(slack_file),
                        COMPOSE_DOCKER_CLI_BUILD="1", DOCKER_BUILDKIT="0")
        self.services: list[str] = []
        self.up_at = 0.0

    # ------------------------------------------------------------------ plumbing
    def run(self, *args: str, timeout: float = 600, check: bool = True,
            log: Path | None = None) -> subprocess.CompletedProcess:
        """Runs a compose command; with `log`, its output goes to that file as it comes."""
        cmd = [*self.compose, "-p", PROJECT, "--project-directory", str(ROOT),
               "-f", str(ROOT / "docker-compose.yml"), "-f", str(HERE / "docker-compose.standins.yml"), *args]
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w") as out:
                code = subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=timeout).returncode
            text = log.read_text(errors="replace")
            done = subprocess.CompletedProcess(cmd, code, text, "")
        else:
            done = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise Failed(f"{' '.join(cmd[len(self.compose):])} exited {done.returncode}:\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")
        return done

    def containers(self, service: str | None = None) -> list[dict]:
        labels = [f"label=com.docker.compose.project={PROJECT}"]
        if service:
            labels.append(f"label=com.docker.compose.service={service}")
        ids = subprocess.run(["docker", "ps", "-aq", *[a for lab in labels for a in ("--filter", lab)]],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return []
        out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def check(self, name: str, fn: Callable[[], str | None]) -> bool:
        t0 = time.monotonic()
        try:
            detail = fn()
        except (Failed, requests.RequestException, subprocess.SubprocessError, AssertionError) as e:
            self.failed.append(name)
            print(f"FAIL  {name} ({time.monotonic() - t0:.0f} s)\n      {e}".replace("\n", "\n      "), flush=True)
            return False
        self.passed.append(name)
        print(f"ok    {name} ({time.monotonic() - t0:.0f} s){': ' + detail if detail else ''}", flush=True)
        return True

    def skip_rest(self, names: list[str], why: str) -> None:
        for name in names:
            self.failed.append(name)
            print(f"FAIL  {name}\n      not run: {why}", flush=True)

    # ------------------------------------------------------------------ checks
    def build(self) -> str:
        t0 = time.monotonic()
        log = ROOT / "target" / "compose-test" / "build.log"
        print(f"      building the images (about 10 minutes the first time; output in {log})", flush=True)
        self.run("build", timeout=3600, log=log)
        self.timings["build"] = time.monotonic() - t0
        sizes = []
        for svc in ("inference-api", "exporter", "traffic-gen"):
            image = f"modelwatch/{svc}:{os.environ.get('MODELWATCH_TAG', 'dev')}"
            size = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image],
                                  capture_output=True, text=True, check=True).stdout.strip()
            sizes.append(f"{svc} {int(size) / 1e6:.0f} MB")
        return f"{self.timings['build']:.0f} s; " + ", ".join(sizes)

    def up_healthy(self) -> str:
        self.services = [s for s in self.run("config", "--services").stdout.split() if s not in LEFT_OUT]
        self.up_at = time.monotonic()
        self.run("up", "-d", "--no-build", *self.services, timeout=600)

        def all_healthy():
            states = {}
            for c in self.containers():
                svc = c["Config"]["Labels"]["com.docker.compose.service"]
                health = (c["State"].get("Health") or {}).get("Status", c["State"]["Status"])
                states[f"{svc}/{c['Name'].lstrip('/')}"] = health
            started = {k.split("/")[0] for k in states}
            if started != set(self.services):
                raise Failed(f"containers of {sorted(set(self.services) - started)} missing")
            bad = {k: v for k, v in states.items() if v != "healthy"}
            if bad:
                raise Failed(f"not healthy: {bad}")
            return states

        states = wait_for("every container healthy", all_healthy, 300, interval=1)
        self.timings["healthy"] = time.monotonic() - self.up_at
        return f"{len(states)} containers healthy {self.timings['healthy']:.0f} s after `up -d` (Grafana left out: no stand-in)"

    def targets_up(self) -> str:
        def all_up():
            active = PROMETHEUS.targets()
            jobs = {t["labels"]["job"] for t in active}
            if jobs != JOBS:
                raise Failed(f"jobs {sorted(jobs)}, want {sorted(JOBS)}")
            down = [f"{t['labels']['job']} {t['labels']['instance']}: {t['health']} {t.get('lastError', '')}"
                    for t in active if t["health"] != "up"]
            if down:
                raise Failed("; ".join(down))
            return len(active)

        n = wait_for("every Prometheus target up", all_up, 120, interval=2)
        self.timings["targets"] = time.monotonic() - self.up_at
        return f"{n} targets up {self.timings['targets']:.0f} s after `up -d`"

    def predict(self) -> str:
        with open(BUNDLE / "samples.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        features = [[float(v) for k, v in r.items() if k != "label"] for r in rows]
        labels = [r["label"] for r in rows]
        manifest = json.loads((BUNDLE / "model.json").read_text())
        r = requests.post(f"{API}/predict", json={"instances": features}, timeout=10)
        assert r.status_code == 200, f"POST /predict (all held-out rows): {r.status_code} {r.text[:300]}"
        got = [p["label"] for p in r.json()["predictions"]]
        accuracy = sum(g == w for g, w in zip(got, labels, strict=True)) / len(labels)
        wanted = manifest["validation"]["scores"]["accuracy"]
        assert abs(accuracy - wanted) < 0.5 / len(labels), \
            f"accuracy on the held-out rows {accuracy:.5f}, the manifest says {wanted}"
        right = next(i for i, (g, w) in enumerate(zip(got, labels)) if g == w)
        one = requests.post(f"{API}/predict", json={"features": features[right]}, timeout=10)
        assert one.status_code == 200, f"POST /predict (one row): {one.status_code} {one.text[:300]}"
        assert one.json()["predictions"][0]["label"] == labels[right], one.text[:300]
        # The same rows through the gateway with the Open Inference Protocol's binary tensors.
        binary = struct.pack(f"<{len(features) * 30}f", *(x for row in features for x in row))
        head = json.dumps({"inputs": [{"name": "input", "shape": [len(features), 30], "datatype": "FP32",
                                       "parameters": {"binary_data_size": len(binary)}}],
                           "outputs": [{"name": "label", "parameters": {"binary_data": True}}]}).encode()
        v2 = requests.post(f"{API}/v2/models/{manifest['name']}/infer", data=head + binary, timeout=10,
                           headers={"Inference-Header-Content-Length": str(len(head))})
        assert v2.status_code == 200, f"V2 infer (binary): {v2.status_code} {v2.text[:300]}"
        n = int(v2.headers["Inference-Header-Content-Length"])
        v2_classes = list(struct.unpack(f"<{len(features)}q", v2.content[n:]))
        classes = [p["class_index"] for p in r.json()["predictions"]]
        assert v2_classes == classes, f"V2 classes differ from /predict's: {v2_classes[:10]} vs {classes[:10]}"
        return (f"held-out row {right} -> {labels[right]!r}; all {len(rows)} rows at accuracy {accuracy:.5f} "
                f"(manifest {wanted}); the same classes through the V2 protocol with binary tensors")

    def demo_traffic(self) -> str:
        models = sorted(p.parent.name for p in (ROOT / "models").glob("*/model.json"))

        def seen():
            api = PROMETHEUS.query(f'sum(inference_http_requests_total{{job="inference-api",{PREDICT_ROUTE_MATCHER}}})')
            gen = PROMETHEUS.query('sum(traffic_requests_total{job="traffic-gen"})')
            if not api or not gen or float(api[0]["value"][1]) <= 0 or float(gen[0]["value"][1]) <= 0:
                raise Failed(f"api {api}, traffic-gen {gen}")
            # The demo takes turns between every bundled model.
            rows = PROMETHEUS.query('sum by (model) (inference_predictions_total{job="inference-api"}) > 0')
            predicted = sorted(r["metric"]["model"] for r in rows)
            if predicted != models:
                raise Failed(f"models with predictions {predicted}, bundled {models}")
            return float(api[0]["value"][1]), float(gen[0]["value"][1])

        api, gen = wait_for("demo traffic in Prometheus", seen, 90, interval=2)
        self.timings["first_data"] = time.monotonic() - self.up_at
        return (f"API counted {api:.0f} prediction requests, traffic-gen sent {gen:.0f}; "
                f"predictions from every bundled model ({', '.join(models)})")

    def exporter_host_root(self) -> str:
        result = wait_for("exporter's root filesystem series",
                          lambda: PROMETHEUS.query('system_filesystem_size_bytes{job="exporter",mountpoint="/"}'), 60, interval=2)
        size = float(result[0]["value"][1])
        assert size > 0, result
        return f"mountpoint=\"/\" size {size / 1e9:.1f} GB (host / mounted without rslave)"

    def logs_bounded(self) -> str:
        unbounded = []
        for c in self.containers():
            log = c["HostConfig"]["LogConfig"]
            if not (log.get("Config") or {}).get("max-size"):
                unbounded.append(f"{c['Name']} ({log.get('Type')}, {log.get('Config')})")
        assert not unbounded, f"container logs without max-size: {unbounded}"
        return "every container: json-file, max-size 10m x 3"

    def models_read_only(self) -> str:
        wanted = str((ROOT / "models").resolve())
        for svc in ("inference-api", "exporter", "traffic-gen"):
            for c in self.containers(svc):
                mounts = {m["Destination"]: m for m in c["Mounts"]}
                m = mounts.get("/app/models")
                assert m is not None, f"{svc}: nothing mounted at /app/models"
                assert m["Type"] == "bind" and m["Source"] == wanted and not m["RW"], \
                    f"{svc}: /app/models is {m['Type']} {m['Source']} rw={m['RW']}, want {wanted} read-only"
        return f"{wanted} read-only in the API, exporter and traffic-gen"

    def new_version_served(self) -> str:
        """A version written into the checkout's models/ (hidden, then renamed, as
        scripts/train_model.py does) is served by the API and reported by the exporter with no
        restart; removing it brings the previous version back."""
        wine = ROOT / "models" / "wine"
        version = wine / "1.0.1"
        staging = wine / ".1.0.1.tmp"
        assert not version.exists() and not staging.exists(), f"left over from another run: {version}"

        def started_at() -> dict[str, str]:
            return {c["Id"]: c["State"]["StartedAt"] for svc in ("inference-api", "exporter")
                    for c in self.containers(svc)}

        started = started_at()

        def served() -> str | None:
            models = requests.get(f"{API}/models", timeout=10).json()["models"]
            versions = next(m for m in models if m["name"] == "wine")["versions"]
            return next((v["version"] for v in versions if v["state"] == "ready"), None)

        def reported(wanted: str):
            def both():
                api = PROMETHEUS.query(f'inference_model_info{{model="wine",version="{wanted}"}}')
                exporter = PROMETHEUS.query(f'model_info{{job="exporter",model="wine",version="{wanted}"}}')
                if not api or not exporter or served() != wanted:
                    raise Failed(f"wine {wanted}: API info {api}, exporter info {exporter}, "
                                 f"GET /models serves {served()}")
                return True
            return both

        features = len(json.loads((wine / "model.json").read_text())["features"])
        written = time.monotonic()
        try:
            write_version(wine, "1.0.1")
            wait_for("wine 1.0.1 served and reported", reported("1.0.1"), 60, interval=1)
            swap = time.monotonic() - written
            r = requests.post(f"{API}/models/wine/versions/1.0.1/predict",
                              json={"features": [1.0] * features}, timeout=10)
            assert r.status_code == 200, f"pinned 1.0.1: {r.status_code} {r.text[:200]}"
        finally:
            for d in (staging, version):
                if d.exists():
                    for f in d.iterdir():
                        f.unlink()
                    d.rmdir()
        wait_for("wine back on 1.0.0", reported("1.0.0"), 60, interval=1)
        now = started_at()
        assert now == started, f"containers restarted: {started} -> {now}"
        return (f"wine 1.0.1 served (GET /models, inference_model_info) and reported by the exporter "
                f"{swap:.1f} s after it was written; removed, 1.0.0 again; no container restarted")

    def scaled(self) -> str:
        self.run("up", "-d", "--no-build", "--no-recreate", "--scale", "inference-api=3", *self.services)

        def three_up():
            up = PROMETHEUS.query('up{job="inference-api"} == 1')
            if len(up) != 3:
                raise Failed(f"{len(up)} API targets up")
            return sorted(s["metric"]["instance"] for s in up)

        instances = wait_for("three API targets up", three_up, 150, interval=2)
        for i in range(30):
            r = requests.post(f"{API}/predict", json={"features": [1.0] * 30}, timeout=10)
            assert r.status_code == 200, f"request {i} through :8000 with 3 replicas: {r.status_code} {r.text[:200]}"

        # The gateway spreads the demo traffic and the requests above over all three replicas.
        def all_serve():
            result = PROMETHEUS.query('sum by (instance) (increase(inference_http_requests_total'
                            f'{{job="inference-api",{PREDICT_ROUTE_MATCHER}}}[1m]))')
            served = {s["metric"]["instance"]: float(s["value"][1]) for s in result}
            if len(served) != 3 or min(served.values()) <= 0:
                raise Failed(f"prediction requests per replica over 1m: {served}")
            return served

        served = wait_for("every replica serving", all_serve, 120, interval=5)
        return "3 targets up (" + ", ".join(instances) + "); predictions per replica over 1m: " + \
            ", ".join(f"{v:.0f}" for v in served.values())

    @staticmethod
    def delivered(alert: str) -> tuple[dict, dict]:
        """The first firing email about `alert` (with its text) and the first Slack post naming it."""
        mail = requests.get(f"{MAILPIT}/api/v1/messages", timeout=5).json()["messages"]
        slack = requests.get(f"{SLACK_SINK}/api/v1/messages", timeout=5).json()["messages"]
        mails = [m for m in mail if alert in m["Subject"] and "RESOLVED" not in m["Subject"]]
        posts = [m for m in slack if alert in json.dumps(m["Body"])]
        if not mails or not posts:
            raise Failed(f"{len(mails)} email(s), {len(posts)} Slack message(s) about {alert} "
                         f"(all emails: {[m['Subject'] for m in mail]})")
        full = requests.get(f"{MAILPIT}/api/v1/message/{mails[-1]['ID']}", timeout=5).json()
        return full, posts[-1]

    def replica_lost(self) -> str:
        """One of three replicas stopped: it leaves Docker's DNS, so Prometheus stops scraping it
        rather than seeing it down; InferenceApiReplicaLost is what fires."""
        replicas = sorted(c["Id"] for c in self.containers("inference-api") if c["State"]["Running"])
        assert len(replicas) == 3, f"{len(replicas)} API replicas running, want 3"
        t0 = time.monotonic()
        subprocess.run(["docker", "stop", replicas[-1]], capture_output=True, check=True, timeout=120)
        mail, _ = wait_for("InferenceApiReplicaLost delivered", lambda: self.delivered("InferenceApiReplicaLost"),
                           330, interval=5)
        self.timings["replica_lost_alert"] = time.monotonic() - t0
        down = [m["Subject"] for m in requests.get(f"{MAILPIT}/api/v1/messages", timeout=5).json()["messages"]
                if "InferenceApiDown" in m["Subject"]]
        assert not down, f"InferenceApiDown notified while two replicas serve: {down}"
        return (f"email {mail['Subject']!r} and a Slack post {self.timings['replica_lost_alert']:.0f} s after "
                "stopping one replica of three")

    def alert_delivered(self) -> str:
        t0 = time.monotonic()
        self.run("stop", "inference-api")
        mail, _ = wait_for("InferenceApiDown delivered", lambda: self.delivered("InferenceApiDown"), 330, interval=5)
        self.timings["alert"] = time.monotonic() - t0
        # The runbook link in the email opens the gateway's copy of RUNBOOK.md at the alert.
        links = re.findall(r"Runbook: (\S+)", mail.get("Text", ""))
        assert links, f"no runbook link in the email:\n{mail.get('Text', '')[:2000]}"
        page = requests.get(links[0], timeout=10)
        url, _, anchor = links[0].partition("#")
        assert page.status_code == 200 and page.headers.get("content-type", "").startswith("text/html"), \
            f"runbook link {links[0]}: {page.status_code} {page.headers.get('content-type')}"
        assert f'id="{anchor}"' in page.text, f"runbook page {url} has no anchor #{anchor}"
        return (f"email {mail['Subject']!r} and a Slack post {self.timings['alert']:.0f} s after stopping the API; "
                f"its runbook link {links[0]} opens the runbook at that heading")

    def nothing_left(self) -> str:
        self.run("down", "-v", "--remove-orphans", timeout=300)
        flt = ["--filter", f"label=com.docker.compose.project={PROJECT}"]
        left = {kind: subprocess.run(["docker", kind, "ls", "-q", *flt] if kind != "container"
                                     else ["docker", "ps", "-aq", *flt],
                                     capture_output=True, text=True, check=True).stdout.split()
                for kind in ("container", "volume", "network")}
        assert not any(left.values()), f"left after down -v: {left}"
        return "no container, volume or network of the project"

    # ------------------------------------------------------------------ the run
    def main(self) -> int:
        print(f"compose test: {' '.join(self.compose)} ({self._compose_version()}), project {PROJECT}; "
              "Grafana is not run (no Grafana image or stand-in exists here)", flush=True)
        # A stack left over from an interrupted run would hold the ports.
        self.run("down", "-v", "--remove-orphans", timeout=300, check=False)
        try:
            if not self.check("images build from docker/Dockerfile", self.build):
                self.skip_rest(["the rest"], "no images")
            elif not self.check("every container healthy", self.up_healthy):
                self._logs()
                self.skip_rest(["the rest"], "the stack is not healthy")
            else:
                self.check("every Prometheus target up", self.targets_up)
                self.check("POST /predict and V2 infer on 127.0.0.1:8000 give the validated classes", self.predict)
                self.check("demo traffic shows in the API's metrics", self.demo_traffic)
                self.check("exporter reports the host's root filesystem", self.exporter_host_root)
                self.check("every container's log is bounded", self.logs_bounded)
                self.check("models mounted read-only from the checkout", self.models_read_only)
                self.check("a new model version is served and reported without a restart",
                           self.new_version_served)
                self.check("--scale inference-api=3: three targets, all served through :8000", self.scaled)
                if not self.check("stopping one replica of three delivers InferenceApiReplicaLost by email and "
                                  "Slack", self.replica_lost):
                    self._logs("alertmanager", "prometheus")
                if not self.check("stopping the API delivers InferenceApiDown by email and Slack, with a "
                                  "runbook link that opens", self.alert_delivered):
                    self._logs("alertmanager", "prometheus")
        except KeyboardInterrupt:
            print("interrupted: tearing down", flush=True)
            self.failed.append("interrupted")
        finally:
            self.check("down -v leaves nothing behind", self.nothing_left)
            for f in self.secret_dir.iterdir():
                f.unlink()
            self.secret_dir.rmdir()
        t = self.timings
        print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items()), flush=True)
        print(f"{len(self.passed)} passed, {len(self.failed)} failed", flush=True)
        return 0 if not self.failed else 1

    def _compose_version(self) -> str:
        v = subprocess.run([*self.compose, "version", "--short"], capture_output=True, text=True)
        return v.stdout.strip() or "unknown version"

    def _logs(self, *services: str) -> None:
        done = self.run("logs", "--no-color", "--tail", "30", *services, check=False)
        print("---- container logs (last 30 lines each)\n" + done.stdout[-8000:], flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(ComposeTest().main())
