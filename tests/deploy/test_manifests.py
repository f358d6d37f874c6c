"""The deployment files agree with the code and with each other.

No Docker engine or Kubernetes cluster runs here, so this is what can be checked
without one: every file parses, the fields that matter are there and consistent
(probe paths, drain timings, selectors, affinity), every file they name exists, every
command is the one the README documents, the dashboard queries only metrics the nodes
export (or are about to), and nginx accepts both configs (`nginx -t`).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.conf import settings
from prometheus_client import REGISTRY

import chatcluster.metrics  # noqa: F401 - registers the metrics the dashboard may query
from chatcluster.cluster import Cluster
from chatcluster.conf import KEYS

ROOT = Path(settings.BASE_DIR)
# The oldest Kubernetes the manifests promise to work on (autoscaling/v2, policy/v1 and
# the Ingress fields used here are all older); the schemas ship with kubernetes-validate.
KUBERNETES_VERSION = "1.29.0"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Metrics another part of issue 7 adds; the dashboard may show them before they exist.
PLANNED_METRICS = {
    "chat_presence_entries": "gauge",
    "chat_rate_limited": "counter",
    "chat_publish_to_deliver_seconds": "histogram",
    "chat_send_queue_drops": "counter",
    "chat_messages_delivered": "counter",
}
SAMPLE_SUFFIXES = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}


def yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s (not kustomize's or Helm's own files)."""
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in load_all(path):
            if "kind" in doc and doc["kind"] != "Kustomization":
                out.append({**doc, "__file__": path})
    return out


def one(kind: str, *, where: Path = K8S) -> dict[str, Any]:
    found = [m for m in manifests() if m["kind"] == kind and m["__file__"].parent == where]
    assert len(found) == 1, f"expected one {kind} in {where}, found {len(found)}"
    return found[0]


def setting_bounds(name: str) -> tuple[float, float | None]:
    """The default and maximum of a number setting, as the app declares it (chatcluster.conf.KEYS)."""
    key = KEYS[name]
    return float(key.default), key.maximum  # type: ignore[arg-type]


def documented_node_command() -> list[str]:
    """The one command the README gives for running a node in a deployment."""
    commands = set(re.findall(r"`(python manage\.py runnode [^`]+)`", (ROOT / "README.md").read_text()))
    assert len(commands) == 1, f"the README should document one node command, found {commands}"
    return shlex.split(commands.pop())


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


# --- every file ---------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_all(path), f"{path} is empty"


def test_every_kubernetes_object_has_api_version_kind_and_a_name() -> None:
    for manifest in manifests():
        assert manifest.get("apiVersion"), manifest["__file__"]
        assert manifest["metadata"]["name"], manifest["__file__"]


def test_every_kubernetes_object_matches_the_api_schema_with_no_unknown_field() -> None:
    for manifest in manifests():
        resource = {key: value for key, value in manifest.items() if key != "__file__"}
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['__file__']}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_kustomization_lists_files_that_exist() -> None:
    (kustomization,) = load_all(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


def test_no_secret_is_committed() -> None:
    assert not [m for m in manifests() if m["kind"] == "Secret"]
    for path in [*yaml_files(), ROOT / "Dockerfile"]:
        text = path.read_text()
        # A key is only ever read from the environment or a Secret, or made on the spot
        # (the compose instructions); the build's placeholder serves nothing.
        for value in re.findall(r"DJANGO_SECRET_KEY[\"']?\s*[:=]\s*(\S+)", text):
            assert value.startswith(("${DJANGO_SECRET_KEY:?", "$(python3", "collectstatic-only")), (path, value)


# --- Kubernetes ---------------------------------------------------------------------


def test_the_deployment_probes_readiness_on_readyz_and_liveness_on_healthz() -> None:
    node = container(one("Deployment"))
    assert node["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert node["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_deployment_runs_the_documented_command() -> None:
    assert container(one("Deployment"))["command"] == documented_node_command()


def test_a_pod_leaves_the_endpoints_before_it_drains_and_has_time_to_finish() -> None:
    deployment = one("Deployment")
    pre_stop = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    default, maximum = setting_bounds("DRAIN_GRACE")
    assert maximum is not None
    configured = float(one("ConfigMap")["data"].get("DRAIN_GRACE", default))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # The kubelet's clock includes preStop: sleep, then the longest drain, then closing.
    assert grace > float(pre_stop[1]) + max(default, maximum, configured)


def test_secrets_come_from_a_secret_reference() -> None:
    env = {item["name"]: item for item in container(one("Deployment"))["env"]}
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "METRICS_TOKEN"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"], name


def test_the_prometheus_example_scrapes_the_annotated_pods_and_reads_its_token_from_a_file() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    keep = [r for r in jobs["relay-chat-pods"]["relabel_configs"] if r.get("action") == "keep"]
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert any(r["regex"] == labels["app.kubernetes.io/name"] for r in keep)
    assert "credentials" not in jobs["relay-chat-nodes"]["authorization"]
    assert jobs["relay-chat-nodes"]["authorization"]["credentials_file"]


def test_prometheus_scrapes_the_pods_from_an_address_the_nodes_allow() -> None:
    deployment = one("Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    allowed = [ipaddress.ip_network(n) for n in one("ConfigMap")["data"]["METRICS_ALLOW"].split(",")]
    # A pod IP in any private range, where the cluster's Prometheus scrapes from.
    for scraper in ("10.42.0.7", "172.17.0.3", "192.168.5.9"):
        assert any(ipaddress.ip_address(scraper) in n for n in allowed), scraper
    assert not any(ipaddress.ip_address("203.0.113.5") in n for n in allowed)


def test_the_service_and_the_budget_select_the_deployments_pods() -> None:
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {port["name"] for port in container(deployment)["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    budget = one("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("where", [K8S, K8S / "optional"], ids=["hpa", "optional-hpa"])
def test_the_autoscaler_targets_the_deployment(where: Path) -> None:
    deployment = one("Deployment")
    target = one("HorizontalPodAutoscaler", where=where)["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )


def test_the_optional_autoscaler_scales_on_connections_per_pod() -> None:
    metrics = one("HorizontalPodAutoscaler", where=K8S / "optional")["spec"]["metrics"]
    assert any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "chat_connections" for m in metrics)


def test_the_ingress_keeps_sessions_by_cookie_and_outwaits_the_ping_cycle() -> None:
    ingress = one("Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-name"]
    assert "http_503" in notes["nginx.ingress.kubernetes.io/proxy-next-upstream"].split()
    ping_cycle = setting_bounds("WS_PING_INTERVAL")[0] + setting_bounds("WS_PING_TIMEOUT")[0]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(notes[f"nginx.ingress.kubernetes.io/{timeout}"]) > ping_cycle
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == one("Service")["metadata"]["name"]


# --- Docker and compose -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_is_python_3_11_slim_runs_as_a_user_and_starts_the_documented_command() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmds = [arg for op, arg in instructions if op == "CMD"]
    assert json.loads(cmds[-1]) == documented_node_command()
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "collectstatic" in runs


def test_the_image_leaves_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".local", ".run", ".git"} <= set(ignored)


def compose() -> dict[str, Any]:
    (doc,) = load_all(DEPLOY / "docker-compose.yml")
    return dict(doc)


def node_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if name.startswith("node")}


def test_compose_runs_three_nodes_from_the_dockerfile_with_the_documented_command() -> None:
    nodes = node_services()
    assert len(nodes) == 3
    for name, service in nodes.items():
        context = DEPLOY / service["build"]["context"]
        assert (context / service["build"]["dockerfile"]).resolve() == ROOT / "Dockerfile", name
        assert service["command"] == documented_node_command(), name
        assert service["environment"]["NODE_ID"] == name
        assert service["environment"]["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")


def test_compose_has_redis_postgres_and_nginx_with_the_committed_config() -> None:
    services = compose()["services"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    mounts = [volume.split(":") for volume in services["nginx"]["volumes"]]
    sources = {(DEPLOY / source).resolve(): target for source, target, *_ in mounts}
    assert sources[DEPLOY / "nginx" / "nginx.conf"] == "/etc/nginx/nginx.conf"
    assert set(node_services()) <= set(services["nginx"]["depends_on"])


def test_the_production_nginx_config_balances_the_compose_nodes() -> None:
    servers = re.findall(r"^\s*server (\w+):8000", (DEPLOY / "nginx" / "nginx.conf").read_text(), re.M)
    assert sorted(servers) == sorted(node_services())


NGINX_CONFIGS = [DEPLOY / "nginx" / "nginx.conf", ROOT / "chat" / "cluster_files" / "nginx.conf.template"]


@pytest.mark.parametrize("path", NGINX_CONFIGS, ids=lambda p: p.name)
def test_both_nginx_configs_make_the_same_choices(path: Path) -> None:
    text = path.read_text()
    for directive in (
        "hash $chat_route consistent;",
        "add_header Set-Cookie $chat_route_cookie always;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_next_upstream error timeout http_502 http_503;",
        "limit_conn chat_conn_per_ip",
        "limit_req zone=",
    ):
        assert directive in text, (path.name, directive)
    assert "ip_hash" not in re.sub(r"#.*", "", text)
    assert re.search(r"server \S+ max_fails=\d+ fail_timeout=\d+s;", text) or "{{upstream_servers}}" in text


def test_the_production_nginx_outwaits_the_ping_cycle() -> None:
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    ping_cycle = setting_bounds("WS_PING_INTERVAL")[0] + setting_bounds("WS_PING_TIMEOUT")[0]
    for directive in ("proxy_read_timeout", "proxy_send_timeout", "send_timeout"):
        (seconds,) = re.findall(rf"^\s*{directive} (\d+)s;", text, re.M)
        assert int(seconds) > ping_cycle, directive


# The parts of a request line that can carry `?token=`: nginx's default `combined` format
# logs `$request`, query string and all.
QUERY_VARIABLES = {"request", "request_uri", "args", "query_string", "is_args"}


def rendered_nginx_configs(tmp_path: Path) -> list[str]:
    """The production config, and the local cluster's as runcluster renders it."""
    cluster = Cluster(balancer="nginx", run_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    return [(DEPLOY / "nginx" / "nginx.conf").read_text(), cluster.nginx_conf()]


def test_nginx_access_logs_never_hold_a_query_string_and_so_no_token(tmp_path: Path) -> None:
    for text in rendered_nginx_configs(tmp_path):
        code = re.sub(r"#.*", "", text)
        formats = {
            name: " ".join(re.findall(r"'([^']*)'", body))
            for name, body in re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", code)
        }
        logs = re.findall(r"^\s*access_log\s+([^;]+);", code, re.M)
        assert logs and formats
        for directive in logs:
            target, *rest = directive.split()
            # No format named means nginx's `combined`, which logs $request.
            assert target == "off" or (rest and rest[0] in formats), directive
        for name, fmt in formats.items():
            used = set(re.findall(r"\$(\w+)", fmt))
            assert not used & QUERY_VARIABLES and not any(v.startswith("arg_") for v in used), (name, used)
            assert "uri" in used, name  # the path is still logged


def test_nginx_answers_a_slow_request_head_at_the_nodes_header_timeout(tmp_path: Path) -> None:
    production, local = rendered_nginx_configs(tmp_path)
    (seconds,) = re.findall(r"^\s*client_header_timeout (\d+)s;", production, re.M)
    assert float(seconds) == setting_bounds("NODE_HEADER_TIMEOUT")[0]
    (seconds,) = re.findall(r"^\s*client_header_timeout (\d+)s;", local, re.M)
    assert float(seconds) == setting_bounds("NODE_HEADER_TIMEOUT")[0]
    # A refused request's error-log line quotes its request line, ?token= included.
    for text in (production, local):
        assert re.search(r"^\s*limit_req_log_level notice;", text, re.M)
        assert re.search(r"^\s*limit_conn_log_level notice;", text, re.M)
        assert re.search(r"^\s*error_log \S+ (warn|error|crit);", text, re.M)


def test_the_local_caddy_gives_a_request_head_the_nodes_header_timeout(tmp_path: Path) -> None:
    caddyfile = Cluster(run_dir=tmp_path, redis_url="redis://127.0.0.1:1/0", env={"NODE_HEADER_TIMEOUT": "2.5"})
    assert re.search(r"servers \{\s*timeouts \{\s*read_header 2\.5s\s*\}", caddyfile.caddyfile())


# --- Grafana ------------------------------------------------------------------------


def exported_sample_names() -> set[str]:
    names = set()
    families = {metric.name: metric.type for metric in REGISTRY.collect() if metric.name.startswith("chat_")}
    for name, kind in {**families, **PLANNED_METRICS}.items():
        names.update(name + suffix for suffix in SAMPLE_SUFFIXES[kind])
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "relay-chat.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    return queries


def test_the_dashboard_queries_only_metrics_the_nodes_export_or_are_about_to() -> None:
    exported = exported_sample_names()
    queries = dashboard_queries()
    assert len(queries) > 10
    used = {name for query in queries for name in re.findall(r"\bchat_[a-z_]+\b", query)}
    assert used <= exported, used - exported
    # And every current metric has a panel.
    current = {name for name in exported if name.removesuffix("_total") in {m.name for m in REGISTRY.collect()}}
    assert current <= used, current - used


# --- nginx -t -----------------------------------------------------------------------


def nginx_test(nginx: Path, conf: Path, prefix: Path) -> None:
    result = subprocess.run([str(nginx), "-t", "-p", f"{prefix}/", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_nginx_accepts_the_config_the_cluster_renders(nginx: Path, tmp_path: Path) -> None:
    cluster = Cluster(balancer="nginx", run_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    cluster.write_config()
    nginx_test(nginx, tmp_path / "nginx.conf", tmp_path)


def test_nginx_accepts_the_production_config(nginx: Path, tmp_path: Path) -> None:
    # The compose service names resolve only inside compose: point them at loopback.
    text = re.sub(r"server node\d+:8000", "server 127.0.0.1:8000", (DEPLOY / "nginx" / "nginx.conf").read_text())
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    nginx_test(nginx, conf, tmp_path)
