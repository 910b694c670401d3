"""docker-compose.yml, the Dockerfile and the Prometheus/Grafana files agree with the code.

`docker compose config` (or the standalone `docker-compose config`, which `make test`
installs) validates the file against the Compose schema; the structural checks below add
what compose cannot know: the workers' env vars are real ticktide settings with valid
values, the workers can be scaled, Prometheus scrapes them, and every metric the Grafana
dashboard plots is one the worker exposes.
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
from prometheus_client.parser import text_string_to_metric_families

from streams.settings import ENV_PREFIX, Settings, load_settings
from streams.worker import build_worker

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_docker_compose_config_validates() -> None:
    cli = _compose_cli()
    assert cli is not None, "neither `docker compose` nor `docker-compose` is installed (`make test-tools` installs it)"
    result = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_service_dependency_exists_and_the_stack_has_what_the_issue_asks_for() -> None:
    services = _compose()["services"]
    assert {"kafka", "schema-registry", "topics", "worker", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert set(service.get("depends_on", ())) <= set(services), name
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"] and "KAFKA_ZOOKEEPER_CONNECT" not in kafka_env
    assert services["topics"]["command"] == ["topics", "create"] and services["topics"]["restart"] == "no"
    # production registers the contract once, in order, and runs with auto-registration off
    assert services["schemas"]["command"] == ["schemas", "register"] and services["schemas"]["restart"] == "no"
    assert set(services["worker"]["depends_on"]) >= {"topics", "schemas"}
    assert _worker_env(services["worker"])["TICKTIDE_SCHEMA_REGISTRY_AUTO_REGISTER"] == "false"


def _worker_env(service: dict[str, Any]) -> dict[str, str]:
    env = service["environment"]
    return {k: str(v) for k, v in env.items() if k != "<<"}


@pytest.mark.parametrize("name", ["worker", "topics", "schemas"])
def test_ticktide_services_are_configured_only_by_valid_ticktide_env_vars(
        name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    service = _compose()["services"][name]
    env = _worker_env(service)
    assert env and all(k.startswith(ENV_PREFIX) for k in env), "only TICKTIDE_* settings"
    unknown = {k for k in env if k.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields}
    assert unknown == set(), f"not ticktide settings: {unknown}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()  # raises ConfigError naming a bad value
    assert settings.broker == "kafka:9092" and settings.schema_registry_url


def test_compose_runs_the_kafka_version_of_the_local_engine_and_keeps_what_it_writes() -> None:
    from streams.devstack.kafka_jars import kafka_version

    kafka = _compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    mounted = {volume.split(":", 1)[1] for volume in kafka["volumes"]}
    assert kafka["environment"]["KAFKA_LOG_DIRS"] in mounted, "Kafka's data must be on the volume"


def test_workers_scale_and_prometheus_scrapes_each_of_them() -> None:
    services = _compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker, "a fixed container name prevents --scale"
    assert all(":" not in str(port) for port in worker.get("ports", ())), "a fixed host port prevents --scale"
    port = int(_worker_env(worker)["TICKTIDE_WEB_PORT"])
    partitions = int(_worker_env(worker)["TICKTIDE_PARTITIONS"])
    assert partitions >= 3, "partitions bound the number of busy workers"
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "ticktide-workers")
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"] == [{"names": ["worker"], "type": "A", "port": port, "refresh_interval": "15s"}]
    for mount in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        assert (REPO / mount.split(":")[0]).exists(), mount


EXPORTER_METRICS = {"kafka_consumergroup_lag"}
"""Metrics of the kafka-exporter service (danielqsj/kafka-exporter) the alert rules use."""


def test_each_alert_rule_watches_a_metric_that_exists(tmp_path: Path) -> None:
    app = build_worker(load_settings(data_dir=tmp_path))
    exposed = {family.name for family in text_string_to_metric_families(app.metrics.render().decode())}
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert {"TicktideWorkerNotReady", "TicktideConsumerLagGrowing", "TicktideNewDeadLetters",
            "TicktideEnrichmentBreakerOpen"} <= names
    for rule in rules:
        used = set(re.findall(r"\b(?:ticktide|kafka)_[a-z_]+", rule["expr"]))
        assert used, f"{rule['alert']} watches no metric"
        missing = {n for n in used if re.sub(r"_(total|bucket|count|sum)$", "", n) not in exposed | EXPORTER_METRICS}
        assert missing == set(), f"{rule['alert']} watches metrics nobody exposes: {missing}"
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert "kafka-exporter" in _compose()["services"]


def test_every_metric_on_the_grafana_dashboard_is_one_a_worker_exposes(tmp_path: Path) -> None:
    app = build_worker(load_settings(data_dir=tmp_path))
    exposed = {family.name for family in text_string_to_metric_families(app.metrics.render().decode())}
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/ticktide.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("throughput", "lag", "latency", "dead letters", "enrichment cost"):
        assert topic in titles
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(?:ticktide|process|python)_[a-z_]+", expr)}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= used
    missing = {name for name in used if re.sub(r"_(total|bucket|count|sum)$", "", name) not in exposed}
    assert missing == set()
    # A counter restarts at 0 with its worker: plotted raw, a restart would look like a refund.
    for expr in exprs:
        for counter in re.findall(r"\b[a-z_]+_total\b(?:\{[^}]*\})?(?:\[[^]]*\])?", expr):
            assert counter.endswith("]"), f"counter plotted without rate()/increase(): {counter} in {expr}"


def test_the_dockerfile_installs_the_package_and_runs_the_worker() -> None:
    text = (REPO / "Dockerfile").read_text()
    for package in ("schemas", "domain", "streams", "tables", "agents"):
        assert f"COPY {package} " in text
    assert 'ENTRYPOINT ["ticktide"]' in text and 'CMD ["worker"]' in text
