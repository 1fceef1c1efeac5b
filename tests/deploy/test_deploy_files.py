"""Static checks of the deployment files under deploy/.

Nothing here needs a Docker engine or a cluster:

* the compose file is parsed by ``docker-compose config`` when that executable
  is installed (Debian's ``docker-compose`` package), and structurally with
  PyYAML in any case;
* every Kubernetes manifest is validated offline with the schemas bundled in
  ``kubernetes-validate`` (strict mode: unknown fields are errors);
* the Grafana dashboard and the search-attribute registration are checked.

When a tool is missing the corresponding test is skipped, except under
``CI=true`` where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workers.runtime.search_attributes import dev_server_flags

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "billing.json"
README = DEPLOY / "README.md"

# Kubernetes schema version the manifests are validated against (bundled by
# every kubernetes-validate >= 1.30, the floor in the project's test extras).
K8S_VERSION = "1.30.0"

# The workflow's own list (workflows/search_attributes.py): a new attribute must be registered here too.
SEARCH_ATTRIBUTES = dict(flag.split("=") for flag in dev_server_flags()[1::2])

K8S_MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _tool_missing(message: str) -> None:
    """Skip locally, fail under CI=true."""
    if _in_ci():
        pytest.fail(f"{message} (required when CI=true)")
    pytest.skip(message)


def _load_yaml(path: Path):
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _env_dict(environment) -> dict[str, str]:
    """Compose `environment:` may be a mapping or a list of KEY=VALUE."""
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {str(k): "" if v is None else str(v) for k, v in environment.items()}
    result = {}
    for item in environment:
        key, _, value = str(item).partition("=")
        result[key] = value
    return result


def _command_text(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if value is None:
            continue
        parts.extend(value if isinstance(value, list) else [value])
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load_yaml(COMPOSE_FILE)


# --------------------------------------------------------------------------
# (a) docker-compose
# --------------------------------------------------------------------------


def test_compose_config_parses_with_docker_compose():
    exe = shutil.which("docker-compose")
    if exe is None:
        _tool_missing("docker-compose executable not found (apt-get install docker-compose)")
    proc = subprocess.run(
        [exe, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}\n{proc.stdout}"
    resolved = yaml.safe_load(proc.stdout)
    worker = resolved["services"]["worker"]
    assert worker["deploy"]["replicas"] == 2
    env = _env_dict(worker.get("environment"))
    assert env["BILLING_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["BILLING_DATABASE_URL"].startswith("postgresql+psycopg2://")


def test_compose_has_required_services(compose):
    services = compose["services"]
    for name in ("temporal", "temporal-ui", "postgresql", "mailpit", "prometheus", "grafana", "worker", "migrate", "api"):
        assert name in services, f"service {name!r} missing from {COMPOSE_FILE}"


def test_compose_worker_service(compose):
    worker = compose["services"]["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker, "container_name prevents running 2 replicas"
    assert worker["build"]["context"] == ".."
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
    assert worker["stop_grace_period"] == "90s"
    env = _env_dict(worker.get("environment"))
    assert "BILLING_DATABASE_URL" in env
    assert "BILLING_TEMPORAL_ADDRESS" in env
    assert env["BILLING_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["BILLING_TEMPORAL_TASK_QUEUE"] == "billing-orgs"
    assert env["BILLING_SMTP_HOST"] == "mailpit"
    # The entitlement webhooks follow the caller's environment (unset: none are sent).
    assert {"BILLING_WEBHOOK_URL", "BILLING_WEBHOOK_SECRET"} <= set(env)
    depends = worker["depends_on"]
    assert depends["temporal"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["register-search-attributes"]["condition"] == "service_completed_successfully"


def test_compose_supporting_services(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert _command_text(migrate).split() == ["billing", "db", "upgrade"]

    temporal = _env_dict(services["temporal"]["environment"])
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["VISIBILITY_DBNAME"] == "temporal_visibility"
    dyn = temporal["DYNAMIC_CONFIG_FILE_PATH"]
    assert any(
        v.startswith("./temporal/dynamicconfig.yaml:") and v.split(":")[1] == dyn
        for v in services["temporal"]["volumes"]
    ), "dynamic config file is not mounted where DYNAMIC_CONFIG_FILE_PATH points"
    assert (DEPLOY / "temporal" / "dynamicconfig.yaml").is_file()

    assert services["postgresql"]["image"] == "postgres:16"
    init_mounts = [v for v in services["postgresql"]["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init_mounts, "postgres init script not mounted"
    init_script = (DEPLOY / init_mounts[0].split(":")[0]).read_text(encoding="utf-8")
    for db in ("temporal", "temporal_visibility", "billing"):
        assert f"CREATE DATABASE {db} " in init_script

    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert _env_dict(ui["environment"])["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert any(str(p).endswith(":8080:8080") for p in ui["ports"])
    assert services["mailpit"]["image"].startswith("axllent/mailpit")


def test_prometheus_scrapes_worker_replicas_via_dns_sd():
    config = _load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    dns_sd = [sd for job in config["scrape_configs"] for sd in job.get("dns_sd_configs", [])]
    assert any(sd["names"] == ["worker"] and sd["type"] == "A" and sd["port"] == 9464 for sd in dns_sd)


def test_grafana_provisioning_points_at_dashboards(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = _load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")
    path = providers["providers"][0]["options"]["path"]
    assert mounts["./grafana/dashboards"] == path
    datasources = _load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    ds = datasources["datasources"][0]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"


def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install \.(\s|$)", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert 'CMD ["python", "-m", "workers.runtime.worker"]' in text
    # The runtime stage installs what WeasyPrint renders invoices with (the worker checks at start).
    runtime = text.split("AS runtime", 1)[1]
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"):
        assert re.search(rf"apt-get install[^\n]*{re.escape(package)}", runtime), package


# --------------------------------------------------------------------------
# (b) Kubernetes manifests
# --------------------------------------------------------------------------


def _kubernetes_validate():
    """The kubernetes_validate library API: validate(data, version, strict=...)."""
    try:
        import kubernetes_validate as kv
    except ImportError:
        _tool_missing("kubernetes-validate is not installed (pip install '.[test]')")
    return kv


def _documents(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def test_k8s_manifests_present():
    names = {p.name for p in K8S_MANIFESTS}
    for required in (
        "namespace.yaml",
        "configmap.yaml",
        "secret.yaml",
        "deployment.yaml",
        "job-migrate.yaml",
        "service.yaml",
    ):
        assert required in names


@pytest.mark.parametrize("manifest", K8S_MANIFESTS, ids=lambda p: p.name)
def test_k8s_manifest_validates(manifest):
    kubernetes_validate = _kubernetes_validate()
    docs = _documents(manifest)
    assert docs, f"{manifest} is empty"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{manifest.name}: {doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
        assert doc["metadata"].get("namespace", "billing") == "billing"


def test_k8s_validation_is_strict():
    """Guard against a vacuous validator: an unknown field must be rejected."""
    kubernetes_validate = _kubernetes_validate()
    doc = _documents(K8S / "deployment.yaml")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_deployment_details():
    (deploy,) = _documents(K8S / "deployment.yaml")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert pod["terminationGracePeriodSeconds"] == 90
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert {"configMapRef": {"name": "billing-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "billing-secrets"}} in container["envFrom"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/metrics"
        assert ports.get(http["port"], http["port"]) == 9464
    volumes = {v["name"]: v for v in pod["volumes"]}
    mtls = [v for v in volumes.values() if v.get("secret", {}).get("secretName") == "temporal-mtls"]
    assert mtls and mtls[0]["secret"]["optional"] is True
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[mtls[0]["name"]] == "/etc/temporal-tls"


def test_k8s_secret_is_a_template():
    (secret,) = _documents(K8S / "secret.yaml")
    assert secret["metadata"]["name"] == "billing-secrets"
    assert secret["stringData"] == {
        "BILLING_DATABASE_URL": "REPLACE_ME",
        "BILLING_SMTP_PASSWORD": "REPLACE_ME",
        "BILLING_TEMPORAL_API_KEY": "REPLACE_ME",
        "BILLING_API_KEY": "REPLACE_ME",
        "STRIPE_API_KEY": "REPLACE_ME",
        "STRIPE_WEBHOOK_SECRET": "REPLACE_ME",
        "BILLING_WEBHOOK_SECRET": "REPLACE_ME",
    }
    assert "secret manager" in (K8S / "secret.yaml").read_text(encoding="utf-8")
    (configmap,) = _documents(K8S / "configmap.yaml")
    for key in configmap["data"]:
        assert key.startswith("BILLING_")
        assert key not in secret["stringData"], f"{key} is secret and must not be in the ConfigMap"
    # The entitlement webhooks are configured in deploy: where they go, and (secret) how they are signed.
    assert configmap["data"]["BILLING_WEBHOOK_URL"].startswith("https://")


def test_k8s_job_and_service():
    (job,) = _documents(K8S / "job-migrate.yaml")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["billing", "db", "upgrade"]
    (service,) = _documents(K8S / "service.yaml")
    assert [p["port"] for p in service["spec"]["ports"]] == [9464]
    (deploy,) = _documents(K8S / "deployment.yaml")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_the_api_runs_the_http_service_with_its_probes(compose):
    api = compose["services"]["api"]
    assert _command_text(api).split() == ["python", "-m", "workers.api"]
    assert _env_dict(api["environment"])["BILLING_API_PORT"] == "8080"
    deploy, service = _documents(K8S / "api.yaml")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "workers.api"]
    assert {"secretRef": {"name": "billing-secrets"}} in container["envFrom"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_kustomization_lists_every_manifest():
    kustomization = _load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S_MANIFESTS)


# --------------------------------------------------------------------------
# (c) Grafana dashboard
# --------------------------------------------------------------------------


def test_grafana_dashboard():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "billing-pipeline"
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    for metric in (
        "billing_charges_total",
        "billing_dunning_total",
        "billing_users_blocked_total",
        "billing_emails_sent_total",
        "temporal_activity_execution_latency_bucket",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_worker_task_slots_available",
    ):
        assert any(metric in e for e in exprs), f"no panel queries {metric}"
    for panel in panels:
        if panel["type"] != "row":
            assert panel["targets"], f"panel {panel['title']!r} has no query"
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}


# --------------------------------------------------------------------------
# (d) search attributes
# --------------------------------------------------------------------------


def test_search_attributes_registered_by_compose(compose):
    service = compose["services"]["register-search-attributes"]
    assert service["image"].startswith("temporalio/admin-tools:")
    script = _command_text(service)
    for name, sa_type in SEARCH_ATTRIBUTES.items():
        pattern = (
            r"temporal operator search-attribute create --address temporal:7233\b[^\n]*"
            rf"--name {name} --type {sa_type}\b"
        )
        assert re.search(pattern, script), f"{name} ({sa_type}) is not registered by the compose stack"


def test_search_attributes_documented_in_readme():
    readme = README.read_text(encoding="utf-8")
    for name, sa_type in SEARCH_ATTRIBUTES.items():
        assert name in readme
        assert re.search(
            rf"temporal operator search-attribute create [^\n]*--name {name} --type {sa_type}\b", readme
        ), f"README lacks the create command for {name}"
    assert "billing temporal register-search-attributes" in readme


def test_every_billing_variable_in_deploy_is_a_setting(compose):
    """Settings ignore unknown variables, so a misspelt name would silently fall back to the default."""
    from workers.runtime.config import Settings
    known = {field.validation_alias if isinstance(field.validation_alias, str) else f"BILLING_{name.upper()}"
             for name, field in Settings.model_fields.items()}
    (configmap,) = _documents(K8S / "configmap.yaml")
    (secret,) = _documents(K8S / "secret.yaml")
    compose_env = _env_dict(compose["x-billing-env"])
    for source, names in (("configmap.yaml", configmap["data"]), ("secret.yaml", secret["stringData"]),
                          ("docker-compose.yml", compose_env)):
        assert set(names) <= known, f"{source}: unknown {sorted(set(names) - known)}"
    # Production runs workflow code unsandboxed, for throughput (docs/reliability.md).
    assert configmap["data"]["BILLING_WORKFLOW_SANDBOX"] == compose_env["BILLING_WORKFLOW_SANDBOX"] == "false"


def test_a_new_stack_creates_the_reconciliation_schedule(compose):
    """BillingReconciliationStale fires on a stack with no schedule: the workers of both deploy
    files create it at start (workers/runtime/worker.py), and the README says so."""
    from workers.runtime.config import Settings
    (configmap,) = _documents(K8S / "configmap.yaml")
    compose_env = _env_dict(compose["services"]["worker"]["environment"])
    for source, env in (("configmap.yaml", configmap["data"]), ("docker-compose.yml worker", compose_env)):
        assert env.get("BILLING_RECONCILE_SCHEDULE") == "true", f"{source}: BILLING_RECONCILE_SCHEDULE is not true"
        assert Settings(reconcile_schedule=env["BILLING_RECONCILE_SCHEDULE"]).reconcile_schedule is True
    deployment = next(d for d in _documents(K8S / "deployment.yaml") if d["kind"] == "Deployment")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    assert {"configMapRef": {"name": "billing-config"}} in container["envFrom"]
    assert "BILLING_RECONCILE_SCHEDULE" in README.read_text(encoding="utf-8")
