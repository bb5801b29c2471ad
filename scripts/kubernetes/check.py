#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests (deploy/kubernetes/), run by scripts/check-kubernetes.sh.

    check.py validate RENDERED.yaml...   every resource against the Kubernetes 1.32 schemas
                                         (kubernetes-validate, strict: unknown fields fail), the
                                         Prometheus Operator kinds against the fields their CRDs
                                         define, and the references between resources (Service ->
                                         pods and named ports, ServiceMonitor -> Service and port,
                                         PDB/HPA -> Deployment, volumes -> PersistentVolumeClaims)
    check.py consistency RENDERED.yaml   the rendered demo overlay against the compose stack:
                                         ports, metrics paths, intervals and job names against
                                         docker-compose.yml and prometheus/prometheus.yml; images,
                                         environment, arguments, mounts, health checks and the
                                         hardening of each service; the drain time; rules,
                                         dashboards and the Alertmanager values fragment against
                                         their sources
    check.py extract-rules RENDERED.yaml DIR
                                         DIR/rules/<name>.yml from each PrometheusRule
                                         modelwatch-<name> and DIR/tests/ = prometheus/tests/*.yml,
                                         for `promtool check rules` / `promtool test rules`
    check.py alertmanager DIR            DIR/alertmanager.yml + DIR/templates/ from the values
                                         fragment, template paths made relative, for amtool

Every subcommand prints what it found and exits 1 on any problem. Needs PyYAML, and
kubernetes-validate for `validate` (scripts/requirements-dev.txt). MODELWATCH_ROOT points it at
another checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402

ROOT = Path(os.environ.get("MODELWATCH_ROOT", HERE.parents[1]))

KUBERNETES_VERSION = "1.32"
NAMESPACE = "modelwatch"
OPERATOR_GROUP = "monitoring.coreos.com/"
# The services built from docker/Dockerfile: compose service = Kubernetes workload = Service =
# ServiceMonitor = Prometheus job.
SERVICES = ["inference-api", "exporter", "traffic-gen"]
# Compose volume sources and what stands for them in Kubernetes.
VOLUME_SOURCES = {"./models": ("persistentVolumeClaim", "models"), "/": ("hostPath", "/")}
# The image's user (docker/Dockerfile: USER 10001:10001).
USER_LINE = re.compile(r"^USER\s+(\d+)(?::(\d+))?\s*$", re.M)

# Fields of the Prometheus Operator CRDs (monitoring.coreos.com/v1, Operator v0.93) that the
# structural check accepts; anything else is a typo that the API server would prune or refuse.
SERVICEMONITOR_SPEC = {
    "attachMetadata", "bodySizeLimit", "convertClassicHistogramsToNHCB", "endpoints",
    "fallbackScrapeProtocol", "jobLabel", "keepDroppedTargets", "labelLimit", "labelNameLengthLimit",
    "labelValueLengthLimit", "namespaceSelector", "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor", "podTargetLabels", "sampleLimit", "scrapeClass",
    "scrapeClassicHistograms", "scrapeNativeHistograms", "scrapeProtocols", "selector",
    "selectorMechanism", "serviceDiscoveryRole", "targetLabels", "targetLimit",
}
ENDPOINT_FIELDS = {
    "authorization", "basicAuth", "bearerTokenFile", "bearerTokenSecret", "enableHttp2",
    "filterRunning", "followRedirects", "honorLabels", "honorTimestamps", "interval",
    "metricRelabelings", "noProxy", "oauth2", "params", "path", "port", "proxyConnectHeader",
    "proxyFromEnvironment", "proxyUrl", "relabelings", "scheme", "scrapeTimeout", "targetPort",
    "tlsConfig", "trackTimestampsStaleness",
}
RELABEL_FIELDS = {"action", "modulus", "regex", "replacement", "separator", "sourceLabels", "targetLabel"}
RELABEL_ACTIONS = {"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                   "lowercase", "uppercase", "keepequal", "dropequal"}
RULE_GROUP_FIELDS = {"interval", "labels", "limit", "name", "partial_response_strategy", "query_offset",
                     "rules"}
RULE_FIELDS = {"alert", "annotations", "expr", "for", "keep_firing_for", "labels", "record"}
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# --------------------------------------------------------------------------- helpers
def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def ident(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def find(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"].get("name") == name), None)


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
        return ((doc.get("spec") or {}).get("template") or {}).get("spec")
    return None


def pod_labels(doc: dict) -> dict:
    return (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if pod_spec(d) is not None]


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def interpolate(value: str) -> str:
    """Compose-style ${VAR:-default} with the defaults only (as scripts/monitoring/check.py)."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(n) * units[u] for n, u in parts)


def container_ports(doc: dict) -> dict[str, int]:
    ports = {}
    for c in (pod_spec(doc) or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name"):
                ports[p["name"]] = p.get("containerPort")
    return ports


# --------------------------------------------------------------------------- validate
def check_servicemonitor(doc: dict) -> list[str]:
    out, where = [], ident(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [f"{where}: no spec"]
    out += [f"{where}: unknown field spec.{k}" for k in sorted(set(spec) - SERVICEMONITOR_SPEC)]
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        out.append(f"{where}: spec.selector must select by matchLabels or matchExpressions")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        return out + [f"{where}: spec.endpoints must be a non-empty list"]
    for i, ep in enumerate(endpoints):
        at = f"{where}: spec.endpoints[{i}]"
        if not isinstance(ep, dict):
            out.append(f"{at}: not a mapping")
            continue
        out += [f"{at}: unknown field {k}" for k in sorted(set(ep) - ENDPOINT_FIELDS)]
        if not isinstance(ep.get("port"), str) or not ep.get("port"):
            out.append(f"{at}: port must name a Service port")
        if "path" in ep and not (isinstance(ep["path"], str) and ep["path"].startswith("/")):
            out.append(f"{at}: path must start with /")
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not (isinstance(ep[key], str) and DURATION.match(ep[key])):
                out.append(f"{at}: {key} {ep[key]!r} is not a Prometheus duration")
        for j, r in enumerate(ep.get("relabelings") or []):
            rat = f"{at}.relabelings[{j}]"
            if not isinstance(r, dict):
                out.append(f"{rat}: not a mapping")
                continue
            out += [f"{rat}: unknown field {k}" for k in sorted(set(r) - RELABEL_FIELDS)]
            action = str(r.get("action", "replace")).lower()
            if action not in RELABEL_ACTIONS:
                out.append(f"{rat}: unknown action {r.get('action')!r}")
            if action in ("replace", "hashmod", "lowercase", "uppercase") and not r.get("targetLabel"):
                out.append(f"{rat}: {action} needs targetLabel")
            if "sourceLabels" in r and not (isinstance(r["sourceLabels"], list)
                                             and all(isinstance(s, str) for s in r["sourceLabels"])):
                out.append(f"{rat}: sourceLabels must be a list of label names")
    return out


def check_prometheusrule(doc: dict) -> list[str]:
    out, where = [], ident(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [f"{where}: no spec"]
    out += [f"{where}: unknown field spec.{k}" for k in sorted(set(spec) - {"groups"})]
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        return out + [f"{where}: spec.groups must be a non-empty list"]
    names = [g.get("name") for g in groups if isinstance(g, dict)]
    if len(names) != len(set(names)):
        out.append(f"{where}: group names must be unique (the CRD's list-map key)")
    for i, g in enumerate(groups):
        at = f"{where}: spec.groups[{i}]"
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not g["name"]:
            out.append(f"{at}: a group needs a name")
            continue
        out += [f"{at}: unknown field {k}" for k in sorted(set(g) - RULE_GROUP_FIELDS)]
        for j, r in enumerate(g.get("rules") or []):
            rat = f"{at}.rules[{j}]"
            if not isinstance(r, dict):
                out.append(f"{rat}: not a mapping")
                continue
            out += [f"{rat}: unknown field {k}" for k in sorted(set(r) - RULE_FIELDS)]
            if ("record" in r) == ("alert" in r):
                out.append(f"{rat}: needs exactly one of record and alert")
            if not isinstance(r.get("expr"), (str, int)) or r.get("expr") == "":
                out.append(f"{rat}: needs an expr")
            for key in ("for", "keep_firing_for"):
                if key in r and not (isinstance(r[key], str) and DURATION.match(r[key])):
                    out.append(f"{rat}: {key} {r[key]!r} is not a Prometheus duration")
            for key in ("labels", "annotations"):
                if key in r and not (isinstance(r[key], dict)
                                     and all(isinstance(v, str) for v in r[key].values())):
                    out.append(f"{rat}: {key} must map names to strings")
    return out


def check_references(docs: list[dict]) -> list[str]:
    out = []
    pods = workloads(docs)
    for doc in docs:
        meta = doc.get("metadata") or {}
        if doc.get("kind") != "Namespace" and meta.get("namespace") != NAMESPACE:
            out.append(f"{ident(doc)}: namespace {meta.get('namespace')!r}, expected {NAMESPACE}")
        if not DNS_SUBDOMAIN.match(str(meta.get("name", ""))):
            out.append(f"{ident(doc)}: invalid name")
    # Workload selectors select their own pod template.
    for w in pods:
        if w.get("kind") == "Job":
            continue
        selector = ((w.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not matches(selector, pod_labels(w)):
            out.append(f"{ident(w)}: spec.selector does not match its pod template's labels")
    # Services: select pods, and each targetPort names a port of those pods.
    for svc in of_kind(docs, "Service"):
        selector = (svc.get("spec") or {}).get("selector") or {}
        targets = [w for w in pods if w.get("kind") != "Job" and matches(selector, pod_labels(w))]
        if not targets:
            out.append(f"{ident(svc)}: its selector {selector} matches no workload's pods")
            continue
        for port in (svc["spec"].get("ports") or []):
            target = port.get("targetPort", port.get("port"))
            for w in targets:
                named = container_ports(w)
                if isinstance(target, str) and target not in named:
                    out.append(f"{ident(svc)}: targetPort {target!r} is not a port of {ident(w)}")
                elif isinstance(target, int) and target not in named.values():
                    out.append(f"{ident(svc)}: targetPort {target} is not a port of {ident(w)}")
    # ServiceMonitors: select a Service of their namespace that has the endpoint's port.
    for sm in of_kind(docs, "ServiceMonitor"):
        spec = sm.get("spec") or {}
        if spec.get("namespaceSelector"):
            out.append(f"{ident(sm)}: namespaceSelector: expected the ServiceMonitor's own namespace")
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        services = [s for s in of_kind(docs, "Service")
                    if matches(selector, s["metadata"].get("labels") or {})
                    and s["metadata"].get("namespace") == sm["metadata"].get("namespace")]
        if not services:
            out.append(f"{ident(sm)}: its selector {selector} matches no Service")
        for ep in spec.get("endpoints") or []:
            for s in services:
                if ep.get("port") not in {p.get("name") for p in s["spec"].get("ports") or []}:
                    out.append(f"{ident(sm)}: port {ep.get('port')!r} is not a port name of {ident(s)}")
    # PodDisruptionBudgets and HPAs point at a Deployment that exists.
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        selector = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not any(matches(selector, pod_labels(w)) for w in of_kind(docs, "Deployment")):
            out.append(f"{ident(pdb)}: its selector matches no Deployment's pods")
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if not find(docs, ref.get("kind", ""), ref.get("name", "")):
            out.append(f"{ident(hpa)}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist")
    # Volumes: claims exist; every mount names a volume of its pod.
    for w in pods:
        spec = pod_spec(w)
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for v in volumes.values():
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and not find(docs, "PersistentVolumeClaim", claim):
                out.append(f"{ident(w)}: volume {v['name']} claims {claim}, which does not exist")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes:
                    out.append(f"{ident(w)}: container {c.get('name')} mounts unknown volume {m.get('name')}")
    return out


def validate(docs: list[dict], version: str = KUBERNETES_VERSION) -> tuple[list[str], list[tuple[str, str]]]:
    """(problems, notes): schema validation of every resource, and the references between them.
    A note is ("schema" | "crd", text) for each resource checked."""
    import kubernetes_validate.utils as kv

    problems, notes = [], []
    for doc in docs:
        where = ident(doc)
        api = str(doc.get("apiVersion", ""))
        if api.startswith(OPERATOR_GROUP):
            checker = {"ServiceMonitor": check_servicemonitor, "PrometheusRule": check_prometheusrule}.get(
                doc.get("kind"))
            if api != OPERATOR_GROUP + "v1" or checker is None:
                problems.append(f"{where}: {api} {doc.get('kind')} is not a kind this check knows")
                continue
            found = checker(doc)
            problems += found
            notes.append(("crd", f"{where}: CRD kind, no Kubernetes schema: checked against the "
                                 f"Operator's v1 fields ({'ok' if not found else 'FAILED'})"))
            continue
        try:
            kv.validate(doc, version, strict=True)
            notes.append(("schema", f"{where}: valid against the Kubernetes {version} schema (strict)"))
        except kv.SchemaNotFoundError as e:
            problems.append(f"{where}: {e.message}")
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"{where}: {path}: {e.message}")
    problems += check_references(docs)
    return problems, notes


# --------------------------------------------------------------------------- consistency
class Sources:
    """What the compose stack says, read from the repository at `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.compose = yaml.safe_load((root / "docker-compose.yml").read_text())
        self.prometheus = yaml.safe_load((root / "prometheus" / "prometheus.yml").read_text())
        self.dockerfile = (root / "docker" / "Dockerfile").read_text()
        self.api_base = yaml.safe_load(
            (root / "crates" / "inference-api" / "configuration" / "base.yaml").read_text())
        self.api_production = yaml.safe_load(
            (root / "crates" / "inference-api" / "configuration" / "production.yaml").read_text())
        self.exporter_base = yaml.safe_load(
            (root / "crates" / "exporter" / "configuration" / "base.yaml").read_text())

    def service(self, name: str) -> dict:
        return (self.compose.get("services") or {}).get(name) or {}

    def container_ports(self, name: str) -> set[int]:
        svc, ports = self.service(name), set()
        for entry in svc.get("ports") or []:
            ports.add(int(interpolate(str(entry)).split("/")[0].rsplit(":", 1)[-1]))
        for entry in svc.get("expose") or []:
            ports.add(int(str(entry).split("/")[0]))
        return ports

    def job(self, name: str) -> dict | None:
        return next((j for j in self.prometheus.get("scrape_configs") or [] if j.get("job_name") == name), None)

    def job_port(self, job: dict) -> int | None:
        for sd in job.get("dns_sd_configs") or []:
            return int(sd["port"])
        for sc in job.get("static_configs") or []:
            for target in sc.get("targets") or []:
                return int(str(target).rsplit(":", 1)[1])
        return None

    def job_interval(self, job: dict) -> str:
        return job.get("scrape_interval") or (self.prometheus.get("global") or {}).get("scrape_interval", "1m")

    def user(self) -> int | None:
        users = USER_LINE.findall(self.dockerfile)
        return int(users[-1][0]) if users else None


def main_container(doc: dict) -> dict:
    containers = (pod_spec(doc) or {}).get("containers") or []
    return next((c for c in containers if c.get("name") == doc["metadata"]["name"]), containers[0] if containers else {})


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}


def compose_environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def effective_job(sm: dict, ep: dict, service: dict) -> str:
    """The job label Prometheus ends with: the Service's name (or its `jobLabel` label), unless a
    relabeling sets it."""
    job = service["metadata"]["name"]
    job_label = sm["spec"].get("jobLabel")
    if job_label and (service["metadata"].get("labels") or {}).get(job_label):
        job = service["metadata"]["labels"][job_label]
    for r in ep.get("relabelings") or []:
        if r.get("targetLabel") == "job" and str(r.get("action", "replace")).lower() == "replace" \
                and not r.get("sourceLabels"):
            job = r.get("replacement", "$1")
    return job


def probe_path(container: dict, kind: str) -> str | None:
    return ((container.get(kind) or {}).get("httpGet") or {}).get("path")


def compose_health_path(svc: dict) -> str:
    """The path the compose healthcheck probes: `<bin> healthcheck [--path P]` (default /health)."""
    test = [str(t) for t in (svc.get("healthcheck") or {}).get("test") or []]
    if "--path" in test:
        return test[test.index("--path") + 1]
    return "/health"


def check_service(src: Sources, docs: list[dict], name: str) -> list[str]:
    out = []
    svc = src.service(name)
    if not svc:
        return [f"docker-compose.yml has no service {name}"]
    w = next((d for d in workloads(docs) if d["metadata"]["name"] == name and d.get("kind") != "Job"), None)
    if w is None:
        return [f"{name}: no Deployment or DaemonSet named {name}"]
    where = ident(w)
    c = main_container(w)
    spec = pod_spec(w)

    # Image: the compose image, tag default included.
    if c.get("image") != interpolate(str(svc.get("image", ""))):
        out.append(f"{where}: image {c.get('image')!r}, compose has {interpolate(str(svc.get('image')))!r}")

    # Ports: the container port behind the ServiceMonitor = compose's container port = prometheus.yml's.
    job = src.job(name)
    if job is None:
        out.append(f"prometheus/prometheus.yml has no job {name}")
        return out
    compose_ports = src.container_ports(name)
    named = container_ports(w)
    if set(named.values()) != compose_ports:
        out.append(f"{where}: container ports {sorted(named.values())}, compose exposes {sorted(compose_ports)}")
    k8s_service = next((s for s in of_kind(docs, "Service") if s["metadata"]["name"] == name), None)
    sm = find(docs, "ServiceMonitor", name)
    if k8s_service is None or sm is None:
        out.append(f"{name}: needs a Service and a ServiceMonitor named {name}")
        return out
    for ep in sm["spec"].get("endpoints") or []:
        port = next((p for p in k8s_service["spec"].get("ports") or [] if p.get("name") == ep.get("port")), {})
        target = port.get("targetPort")
        scraped = named.get(target) if isinstance(target, str) else target
        if scraped != src.job_port(job):
            out.append(f"ServiceMonitor/{name}: scrapes container port {scraped}, prometheus.yml job "
                       f"{name} scrapes {src.job_port(job)}")
        if port.get("port") != scraped:
            out.append(f"Service/{name}: port {port.get('port')} differs from the container port {scraped}")
        if ep.get("path", "/metrics") != job.get("metrics_path", "/metrics"):
            out.append(f"ServiceMonitor/{name}: path {ep.get('path')!r}, prometheus.yml job {name} has "
                       f"{job.get('metrics_path', '/metrics')!r}")
        if seconds(ep.get("interval", "30s")) != seconds(src.job_interval(job)):
            out.append(f"ServiceMonitor/{name}: interval {ep.get('interval')!r}, prometheus.yml scrapes "
                       f"job {name} every {src.job_interval(job)}")
        job_label = effective_job(sm, ep, k8s_service)
        if job_label != name:
            out.append(f"ServiceMonitor/{name}: job label {job_label!r}, the rules and "
                       f"dashboards select job={name!r}")

    # Environment: every compose variable with the same value.
    env = env_of(c)
    for key, value in compose_environment(svc).items():
        if env.get(key) != value:
            out.append(f"{where}: env {key}={env.get(key)!r}, compose sets {value!r}")

    # Arguments: compose's command, except where the API is reached (compose: its gateway).
    if svc.get("command") is not None:
        want = [interpolate(str(a)) for a in svc["command"]]
        have = [str(a) for a in c.get("args") or []]
        if "--target" in want and "--target" in have:
            api_port = named_port_of(docs, "inference-api")
            expected_target = f"http://inference-api:{api_port}"
            if have[have.index("--target") + 1] != expected_target:
                out.append(f"{where}: --target {have[have.index('--target') + 1]!r}, expected the "
                           f"inference-api Service {expected_target!r}")
            want[want.index("--target") + 1] = have[have.index("--target") + 1]
        if have != want:
            out.append(f"{where}: args {have}, compose's command is {want}")

    # Mounts: each compose bind mount, read-only where compose has :ro.
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for entry in svc.get("volumes") or []:
        parts = str(entry).split(":")
        source, target, ro = parts[0], parts[1], parts[2:] == ["ro"]
        mount = mounts.get(target)
        if mount is None:
            out.append(f"{where}: nothing mounted at {target} (compose mounts {source} there)")
            continue
        if ro and not mount.get("readOnly"):
            out.append(f"{where}: {target} must be mounted readOnly, as in compose")
        kind, ref = VOLUME_SOURCES.get(source, (None, None))
        volume = volumes.get(mount["name"], {})
        got = (volume.get(kind) or {}).get("claimName" if kind == "persistentVolumeClaim" else "path")
        if kind is None or got != ref:
            out.append(f"{where}: {target} comes from {volume}, expected the {kind} {ref} for compose's {source}")
        if kind == "persistentVolumeClaim" and ro and not volume[kind].get("readOnly"):
            out.append(f"{where}: the claim {ref} must be attached readOnly")

    # Health: readiness probes what the compose healthcheck probes; liveness /health.
    if probe_path(c, "readinessProbe") != compose_health_path(svc):
        out.append(f"{where}: readinessProbe {probe_path(c, 'readinessProbe')!r}, compose's healthcheck "
                   f"probes {compose_health_path(svc)!r}")
    if probe_path(c, "livenessProbe") != "/health":
        out.append(f"{where}: livenessProbe {probe_path(c, 'livenessProbe')!r}, expected /health")

    # Hardening: compose's read_only, cap_drop ALL, no-new-privileges and tmpfs /tmp; the image's user.
    out += hardening(w, src.user(), svc)
    for tmp in svc.get("tmpfs") or []:
        mount = mounts.get(tmp)
        if mount is None or "emptyDir" not in volumes.get(mount["name"], {}):
            out.append(f"{where}: needs an emptyDir at {tmp} (compose: tmpfs)")
    return out


def hardening(w: dict, user: int | None, svc: dict) -> list[str]:
    """Every container of a workload as hardened as the compose service `svc` and the image."""
    out, where, spec = [], ident(w), pod_spec(w)
    pod_sc = spec.get("securityContext") or {}
    for cont in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        at = f"{where} container {cont.get('name')}"
        sc = {**pod_sc, **(cont.get("securityContext") or {})}
        if svc.get("read_only") and sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{at}: readOnlyRootFilesystem must be true (compose: read_only)")
        if "ALL" in (svc.get("cap_drop") or []) and "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            out.append(f"{at}: capabilities must drop ALL (compose: cap_drop)")
        if "no-new-privileges:true" in (svc.get("security_opt") or []) and sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{at}: allowPrivilegeEscalation must be false (compose: no-new-privileges)")
        if (sc.get("capabilities") or {}).get("add") or sc.get("privileged"):
            out.append(f"{at}: adds privileges")
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != user:
            out.append(f"{at}: must run as non-root user {user} (docker/Dockerfile USER)")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            out.append(f"{at}: seccompProfile must be RuntimeDefault")
        resources = cont.get("resources") or {}
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(kind) or {}):
                out.append(f"{at}: needs cpu and memory {kind}")
    return out


def named_port_of(docs: list[dict], name: str) -> int | None:
    svc = find(docs, "Service", name)
    return (svc["spec"]["ports"][0].get("port") if svc else None)


def check_api(src: Sources, docs: list[dict]) -> list[str]:
    """Drain time, bundle path and autoscaling of the inference API."""
    out = []
    w = find(docs, "Deployment", "inference-api")
    if w is None:
        return ["Deployment/inference-api is missing"]
    spec, c = pod_spec(w), main_container(w)
    drain = int(env_of(c).get("APP_SERVER__SHUTDOWN_TIMEOUT_SECONDS")
                or src.api_base["server"]["shutdown_timeout_seconds"])
    if drain != src.api_base["server"]["shutdown_timeout_seconds"]:
        out.append(f"{ident(w)}: APP_SERVER__SHUTDOWN_TIMEOUT_SECONDS={drain}, base.yaml has "
                   f"{src.api_base['server']['shutdown_timeout_seconds']}")
    pre_stop = ((c.get("lifecycle") or {}).get("preStop") or {})
    command = (pre_stop.get("exec") or {}).get("command") or []
    sleep = int(command[-1]) if command[:1] == ["sleep"] else int((pre_stop.get("sleep") or {}).get("seconds", 0))
    if sleep <= 0:
        out.append(f"{ident(w)}: needs a preStop sleep, so the endpoints drop the pod before SIGTERM")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= sleep + drain:
        out.append(f"{ident(w)}: terminationGracePeriodSeconds {grace} must exceed preStop {sleep} s + "
                   f"drain {drain} s (server.shutdown_timeout_seconds)")
    # The default model's folder in the production repository (the model `model.default` names).
    model = {**src.api_base["model"], **src.api_production["model"]}
    bundle = f'{model["repository"]}/{model["default"]}'
    for init in spec.get("initContainers") or []:
        if f"{bundle}/model.json" not in " ".join(init.get("command") or []):
            out.append(f"{ident(w)}: init container {init.get('name')} must wait for {bundle}/model.json "
                       f"(model.repository + model.default in production.yaml over base.yaml)")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        if find(docs, kind, "inference-api") is None:
            out.append(f"{kind}/inference-api is missing")
    return out


def check_generated(root: Path, docs: list[dict]) -> list[str]:
    """Rules, dashboards and the Alertmanager values fragment against their sources."""
    out = []
    paths = generate.Paths(root)
    rules = {f"modelwatch-{f.stem}": yaml.safe_load(f.read_text()) for f in generate.rule_files(paths)}
    rendered = {d["metadata"]["name"]: d for d in of_kind(docs, "PrometheusRule")}
    for name in sorted(set(rules) | set(rendered)):
        if name not in rendered:
            out.append(f"PrometheusRule/{name} is missing (prometheus/rules has {name[len('modelwatch-'):]}.yml)")
        elif name not in rules:
            out.append(f"PrometheusRule/{name} has no rule file in prometheus/rules")
        elif rendered[name].get("spec") != rules[name]:
            out.append(f"PrometheusRule/{name}: its rules differ from prometheus/rules/"
                       f"{name[len('modelwatch-'):]}.yml")
    dashboards = {f.name: f.read_text() for f in generate.dashboard_files(paths)}
    maps = [d for d in of_kind(docs, "ConfigMap")
            if (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
    found = {}
    for cm in maps:
        for key, value in (cm.get("data") or {}).items():
            found[key] = value
    for key in sorted(set(dashboards) | set(found)):
        if key not in found:
            out.append(f"dashboard {key}: no ConfigMap labelled grafana_dashboard=1 carries it")
        elif key not in dashboards:
            out.append(f"dashboard {key}: not in grafana-provisioning/dashboards")
        elif found[key] != dashboards[key]:
            out.append(f"dashboard {key}: the ConfigMap's JSON differs from grafana-provisioning/dashboards/{key}")
    out += check_values_fragment(paths)
    return out


def check_values_fragment(paths: generate.Paths) -> list[str]:
    out = []
    if not paths.values.exists():
        return [f"{generate.rel(paths, paths.values)} is missing"]
    values = yaml.safe_load(paths.values.read_text()) or {}
    am = values.get("alertmanager") or {}
    source = yaml.safe_load(paths.alertmanager.read_text())
    config = am.get("config") or {}
    if generate.alertmanager_config_for_compose(config) != source:
        for key in sorted(set(source) | set(config)):
            if generate.alertmanager_config_for_compose(config).get(key) != source.get(key):
                out.append(f"kube-prometheus-stack-values.yaml: alertmanager.config.{key} differs from "
                           f"alertmanager/alertmanager.yml beyond the documented rewrites")
    templates = {t.name: t.read_text() for t in generate.template_files(paths)}
    if am.get("templateFiles") != templates:
        out.append("kube-prometheus-stack-values.yaml: alertmanager.templateFiles differ from alertmanager/templates")
    if generate.ALERTMANAGER_SECRET not in ((am.get("alertmanagerSpec") or {}).get("secrets") or []):
        out.append(f"kube-prometheus-stack-values.yaml: alertmanagerSpec.secrets must list {generate.ALERTMANAGER_SECRET}")
    for key in ("smtp_auth_password_file", "slack_api_url_file"):
        value = str((config.get("global") or {}).get(key, ""))
        if value.rsplit("/", 1)[0] != generate.SECRET_DIR or value.rsplit("/", 1)[-1] not in generate.SECRET_KEYS:
            out.append(f"kube-prometheus-stack-values.yaml: global.{key} {value!r} is not a key of the Secret "
                       f"{generate.ALERTMANAGER_SECRET}")
    return out


def consistency(root: Path, docs: list[dict]) -> list[str]:
    src = Sources(root)
    out = []
    for name in SERVICES:
        out += check_service(src, docs, name)
    out += check_api(src, docs)
    # The other workloads (the models-seed Job) run the inference-api image: hardened like it.
    for w in workloads(docs):
        if w["metadata"]["name"] not in SERVICES:
            out += hardening(w, src.user(), src.service("inference-api"))
    # Every scrape job of a service built from docker/Dockerfile has its ServiceMonitor.
    for job in src.prometheus.get("scrape_configs") or []:
        svc = src.service(job["job_name"])
        if str(svc.get("image", "")).startswith("modelwatch/") and job["job_name"] not in SERVICES:
            out.append(f"prometheus.yml job {job['job_name']}: no ServiceMonitor (add it to SERVICES)")
    out += check_generated(root, docs)
    return out


# --------------------------------------------------------------------------- extraction
def extract_rules(docs: list[dict], out: Path, root: Path) -> list[str]:
    (out / "rules").mkdir(parents=True, exist_ok=True)
    (out / "tests").mkdir(parents=True, exist_ok=True)
    written = []
    for doc in of_kind(docs, "PrometheusRule"):
        name = doc["metadata"]["name"]
        if not name.startswith("modelwatch-"):
            continue
        target = out / "rules" / f"{name[len('modelwatch-'):]}.yml"
        target.write_text(yaml.safe_dump(doc["spec"], sort_keys=False, width=4096, allow_unicode=True))
        written.append(str(target.relative_to(out)))
    for test in sorted((root / "prometheus" / "tests").glob("*.yml")):
        shutil.copy(test, out / "tests" / test.name)
    return written


def extract_alertmanager(root: Path, out: Path) -> None:
    paths = generate.Paths(root)
    values = yaml.safe_load(paths.values.read_text())
    am = values["alertmanager"]
    config = dict(am["config"])
    config["templates"] = ["templates/*.tmpl" if t == f"{generate.TEMPLATE_DIR}/*.tmpl" else t
                           for t in config.get("templates") or []]
    (out / "templates").mkdir(parents=True, exist_ok=True)
    (out / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False, width=4096))
    for name, text in am["templateFiles"].items():
        (out / "templates" / name).write_text(text)


# --------------------------------------------------------------------------- CLI
def report(problems: list[str]) -> int:
    for p in problems:
        print(f"    {p}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate")
    v.add_argument("files", nargs="+", type=Path)
    v.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    c = sub.add_parser("consistency")
    c.add_argument("file", type=Path)
    e = sub.add_parser("extract-rules")
    e.add_argument("file", type=Path)
    e.add_argument("dir", type=Path)
    a = sub.add_parser("alertmanager")
    a.add_argument("dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "validate":
        problems = []
        for f in args.files:
            found, notes = validate(load_docs(f), args.kubernetes_version)
            schema = sum(kind == "schema" for kind, _ in notes)
            crd = sum(kind == "crd" for kind, _ in notes)
            print(f"    {f.name}: {schema} resources against the Kubernetes {args.kubernetes_version} "
                  f"schemas, {crd} Prometheus Operator resources against their CRD fields "
                  "(no Kubernetes schema for CRD kinds)")
            problems += [f"{f.name}: {p}" for p in found]
        return report(problems)
    if args.command == "consistency":
        problems = consistency(ROOT, load_docs(args.file))
        if not problems:
            print(f"    {', '.join(SERVICES)}: ports, paths, intervals, jobs, images, env, args, mounts, "
                  "probes, hardening; drain time; rules, dashboards, Alertmanager: as in the compose stack")
        return report(problems)
    if args.command == "extract-rules":
        written = extract_rules(load_docs(args.file), args.dir, ROOT)
        print(f"    {', '.join(written) or 'no PrometheusRule'}")
        return 0 if written else 1
    if args.command == "alertmanager":
        extract_alertmanager(ROOT, args.dir)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
