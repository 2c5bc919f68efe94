"""The Prometheus rules and scrape configs hold together (issue 20, deliver 4).

- No target label clashes with the metrics' own `service` label (Prometheus would rename the
  scraped one to `exported_service`), and nothing selects `job` or `exported_*`.
- `up` is selected by labels that compose's static config and Kubernetes' annotation-based
  scraping (deploy/prometheus/kubernetes-pods.yml: a labelmap of the pods' labels) both give.
- An alert's summary names only labels its expression keeps (after `by (...)`).
- With promtool on the PATH (Debian: apt-get install prometheus; .ci/run installs it): `promtool
  check rules`, `check config`, and `test rules` with series as Kubernetes would scrape them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "fengqiao.json"
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
UP_LABELS = {"app_kubernetes_io_name": "fengqiao"}
METRIC_LABELS = {"service"}  # every service's metrics carry it (fengqiao.runtime.messaging)


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def test_every_rule_is_an_alert_with_an_expression_and_a_summary() -> None:
    found = rules()
    assert len(found) >= 10
    names = [r["alert"] for r in found]
    assert len(set(names)) == len(names), "two alerts of one name"
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


@pytest.mark.parametrize("where", ["alerts", "dashboard"])
def test_nothing_selects_job_or_a_renamed_label(where: str) -> None:
    texts = [r["expr"] for r in rules()] if where == "alerts" else dashboard_expressions()
    for text in texts:
        assert not re.search(r"\bjob\s*[=!~]", text), text
        assert "exported_" not in text, text
        if re.search(r"\bup\s*\{", text) or re.fullmatch(r"\s*up\s*", text):
            assert 'app_kubernetes_io_name="fengqiao"' in text, text


def test_no_target_label_clashes_with_the_metrics_labels() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            labels = static.get("labels", {})
            assert not METRIC_LABELS & set(labels), static
            assert UP_LABELS.items() <= labels.items(), static
            [target] = static["targets"]
            assert labels["app_kubernetes_io_component"] == target.split(":")[0]


def labelmap(pod_labels: dict[str, str], regex: str) -> dict[str, str]:
    """What Prometheus' labelmap makes of a pod's labels (their names sanitized as its
    __meta_kubernetes_pod_label_<name> meta labels are)."""
    meta = {"__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
            for k, v in pod_labels.items()}  # fmt: skip
    return {m[1]: v for k, v in meta.items() if (m := re.fullmatch(regex, k))}


def test_kubernetes_scraping_gives_the_labels_the_up_alert_selects() -> None:
    config = yaml.safe_load((PROMETHEUS / "kubernetes-pods.yml").read_text())
    [job] = config["scrape_configs"]
    relabels = job["relabel_configs"]
    [mapping] = [r for r in relabels if r.get("action") == "labelmap"]
    assert not any(r.get("target_label") in METRIC_LABELS for r in relabels)
    deployments = [
        d for p in K8S for d in yaml.safe_load_all(p.read_text()) if d and d["kind"] == "Deployment"
    ]
    assert len(deployments) == 5
    for deployment in deployments:
        template = deployment["spec"]["template"]["metadata"]
        assert template["annotations"]["prometheus.io/scrape"] == "true"
        labels = labelmap(template["labels"], mapping["regex"])
        assert UP_LABELS.items() <= labels.items(), deployment["metadata"]["name"]
        assert not METRIC_LABELS & set(labels)


def test_a_summary_names_only_labels_its_expression_keeps() -> None:
    for rule in rules():
        named = set(re.findall(r"\$labels\.(\w+)", rule["annotations"]["summary"]))
        kept = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", rule["expr"])
        if kept and not rule["expr"].lstrip().startswith("increase("):
            outer = {label.strip() for label in kept[0].split(",")}
            assert named <= outer, f"{rule['alert']}: {named - outer} is aggregated away"


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="no promtool on the PATH")


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_promtool
def test_promtool_checks_the_rules_and_the_compose_config(tmp_path: Path) -> None:
    promtool("check", "rules", str(ALERTS))
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml"))
    )
    promtool("check", "config", str(tmp_path / "prometheus.yml"))


TARGET = 'job="kubernetes-pods",app_kubernetes_io_name="fengqiao",namespace="fq"'
TRIAGE_SUMMARY = (
    "3 possibly urgent posts have waited over 30 minutes in the triage queue (workbench: 分拣)"
)


def expected(alert: str, at: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
    exp = {"exp_labels": labels, "exp_annotations": {"summary": summary}}
    return {"eval_time": at, "alertname": alert, "exp_alerts": [exp]}


@needs_promtool
def test_the_alerts_fire_on_series_as_kubernetes_scrapes_them(tmp_path: Path) -> None:
    # Kubernetes' job name and pod labels, not compose's: the alerts must not care.
    target = dict(re.findall(r'(\w+)="([^"]*)"', TARGET))
    down = expected(
        "FengqiaoServiceDown",
        "3m",
        {**target, "app_kubernetes_io_component": "tracker"},
        "tracker () does not answer /metrics",
    )
    series = [
        {"series": f'up{{{TARGET},app_kubernetes_io_component="tracker"}}', "values": "0x5"},
        {
            "series": f'fengqiao_router_triage_pending{{{TARGET},service="router",urgent="true"}}',
            "values": "3x40",
        },
    ]
    waiting = expected("FengqiaoTriageQueueWaiting", "35m", {}, TRIAGE_SUMMARY)
    case = {"interval": "1m", "input_series": series, "alert_rule_test": [down, waiting]}
    tests = {"rule_files": [str(ALERTS)], "evaluation_interval": "1m", "tests": [case]}
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests, allow_unicode=True))
    promtool("test", "rules", str(path))
