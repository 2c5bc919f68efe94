"""deploy/ stays consistent with the code: compose.yaml, the Dockerfile and the Kubernetes
manifests name real settings and commands and probe /healthz and /readyz; the Prometheus
configuration scrapes every service; the alerts and the Grafana dashboard name metrics the
services really expose."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fengqiao.auth.accounts import AccountSettings
from fengqiao.auth.settings import OidcSettings
from fengqiao.cli import build_parser
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.settings import IntakeSettings
from fengqiao.services.notifier.settings import NotifierSettings
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.testing.containers import KAFKA_IMAGE, kraft_environment, start_script

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "FENGQIAO_": StackSettings,
    "FENGQIAO_INTAKE_": IntakeSettings,
    "FENGQIAO_ROUTER_": RouterSettings,
    "FENGQIAO_TRACKER_": TrackerSettings,
    "FENGQIAO_NOTIFIER_": NotifierSettings,
    "FENGQIAO_OIDC_": OidcSettings,
    "FENGQIAO_WORKBENCH_": WorkbenchSettings,
    "FENGQIAO_AUTH_": AccountSettings,
}


def known_variables() -> set[str]:
    names = set()
    for prefix, cls in SETTINGS.items():
        names.update(prefix + field.upper() for field in cls.model_fields)
    return names


DEPLOY = ROOT / "deploy"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
PORTS = {"intake": 8081, "router": 8082, "tracker": 8083, "notifier": 8084, "workbench": 8085}
# Metrics other services are adding (notifier outbox, tracker timers): the dashboard has their
# panels already. A name leaves this set by being registered; a typo does not hide here.
ANNOUNCED = {
    "fengqiao_notifier_outbox_depth",
    "fengqiao_tracker_pending_timers",
    "fengqiao_tracker_overdue_cases",
}

# The assessment figures, SLA breaches and the triage and reply queues (issue 20, deliver 4).
ASSESSMENT = {
    "fengqiao_tracker_unit_rate",
    "fengqiao_tracker_tier_rate",
    "fengqiao_tracker_unit_cases",
    "fengqiao_tracker_sla_breaches",
    "fengqiao_tracker_figures_timestamp_seconds",
    "fengqiao_router_triage_pending",
    "fengqiao_notifier_parked",
    "fengqiao_notifier_queue_depth",
}


def test_every_variable_in_deploy_is_a_setting() -> None:
    text = "".join(p.read_text() for p in (DEPLOY / "compose.yaml", DEPLOY / "Dockerfile", *K8S))
    used = set(re.findall(r"\b(FENGQIAO_[A-Z_]+)\b", text))
    assert used, "deploy files name no settings?"
    unknown = used - known_variables()
    assert not unknown, f"deploy names settings that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize("service", ["intake", "router", "tracker", "notifier", "simulator"])
def test_compose_commands_parse(service: str) -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    command = compose["services"][service]["command"]
    args = build_parser().parse_args(command)
    assert args.command in {"run", "simulator"}


def k8s_documents() -> list[Any]:
    return [d for p in K8S for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.mark.parametrize("service", list(PORTS))
def test_kubernetes_deployment_probes_health_and_readiness(service: str) -> None:
    docs = k8s_documents()
    [deployment] = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"fengqiao-{service}"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.command, args.service, args.port) == ("run", service, PORTS[service])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == PORTS[service]
    # Kafka's credentials (FENGQIAO_KAFKA_SASL_*) reach every service from one Secret.
    assert {"secretRef": {"name": "fengqiao-kafka", "optional": True}} in container["envFrom"]
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert f"{service}.yaml" in kustomization["resources"]


def test_compose_waits_for_readiness() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service, port in PORTS.items():
        check = " ".join(compose["services"][service]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in check, service


def test_prometheus_scrapes_every_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    assert targets == {f"{s}:{p}" for s, p in PORTS.items()}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounted = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "prometheus.yml" in mounted and "alerts.yml" in mounted


def exposed_metric_names() -> set[str]:
    """Every sample name the four services' registries can expose (built, not started)."""
    names: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count")}
    for service in PORTS:
        runtime = importlib.import_module(f"fengqiao.services.{service}.app").build()[0]
        for family in runtime.registry.collect():
            names.add(family.name)
            names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def referenced_metrics(text: str) -> set[str]:
    return set(re.findall(r"\b(fengqiao_[a-z_]+)\b", text))


def test_dashboard_and_alerts_name_real_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_BOOTSTRAP", "127.0.0.1:1")  # built, never connected
    dashboard = json.loads((DEPLOY / "grafana" / "fengqiao.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expressions += [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    used = set().union(*(referenced_metrics(e) for e in expressions))
    unknown = used - exposed_metric_names() - ANNOUNCED
    assert not unknown, f"dashboard or alerts name metrics no service exposes: {sorted(unknown)}"
    for name in (
        "fengqiao_messages_processed_total",
        "fengqiao_handler_seconds_bucket",
        "fengqiao_consumer_lag",
        *ANNOUNCED,
        *ASSESSMENT,
    ):
        assert name in used, f"no panel or alert shows {name}"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def pom_kafka_version() -> str:
    pom = (DEPLOY / "kafka" / "pom.xml").read_text()
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert found is not None
    return found[1]


def test_one_kafka_version_for_the_local_stack_compose_k8s_and_testcontainers() -> None:
    """The POM (the native stack), compose, the Kubernetes manifests and the testcontainers path
    name one Kafka."""
    version = pom_kafka_version()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version}"
    assert f"apache/kafka:{version}" == KAFKA_IMAGE
    # Kubernetes: the services use a cluster of your own; the stack's ConfigMap says which Kafka
    # they are tested against, and any Kafka image a manifest names is that one.
    [stack_config] = [
        d for d in k8s_documents() if d.get("metadata", {}).get("name") == "fengqiao-stack"
    ]
    assert stack_config["metadata"]["annotations"]["fengqiao.io/kafka-version"] == version
    images = re.findall(r"image:\s*(\S*kafka\S*)", "".join(p.read_text() for p in K8S))
    assert all(image.endswith(f":{version}") for image in images), images
    # No other Kafka anywhere in the code: no Confluent image, no other apache/kafka tag.
    code = "".join(p.read_text() for p in (ROOT / "fengqiao").rglob("*.py"))
    assert "confluentinc/cp-kafka:" not in code
    assert set(re.findall(r"apache/kafka:([\w.]+)", code)) == {version}


def test_testcontainers_kafka_is_configured_for_kraft() -> None:
    """The container's variables make one KRaft node whose client listener is the mapped one."""
    env = kraft_environment()
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == set(protocols) == {"PLAINTEXT", "BROKER", "CONTROLLER"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].endswith(listeners["CONTROLLER"].split(":")[1])
    script = start_script("127.0.0.1", 32771)
    assert "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:32771,BROKER://" in script
    assert script.rstrip().endswith("/etc/kafka/docker/run")
