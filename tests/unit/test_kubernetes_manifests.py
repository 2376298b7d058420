"""The Kubernetes manifests (deploy/kubernetes) agree with each other and with the service, in
what a schema validator (`make k8s`) cannot see: which pods each selector picks, that the probes
ask routes the application has, that the ConfigMap and the Secret's keys make a configuration
production accepts, and that shutdown fits in the grace period."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import cli
from app.kernel.settings import Settings
from app.main import create_app

ROOT = Path(__file__).parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
GUIDE = ROOT / "docs" / "deployment.md"

# The Secret the operator creates (docs/deployment.md, "Kubernetes"), with values production
# accepts: real-looking passwords, a signing key of 32 characters or more.
SECRET = {
    "CARELEVEL_DATABASE_URL": "postgresql+asyncpg://carelevel:Vd7qL2xN9w@db.internal:5432/carelevel",
    "CARELEVEL_REDIS_URL": "rediss://:Jk4mT8pR2s@redis.internal:6379/0",
    "CARELEVEL_SIGNED_LINK_SECRET": "hV3nQ8zL1pW6rT0yK5mB9cX2fD7gJ4sA",
}


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    """Every resource of the manifests, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for document in yaml.safe_load_all(path.read_text("utf-8")):
                assert document["kind"] not in found, f"a second {document['kind']}"
                found[document["kind"]] = document
    return found


def _pod(resource: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = resource["spec"]["template"]
    return template


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_the_kustomization_lists_every_manifest_and_sets_their_one_image(
    resources: dict[str, dict[str, Any]],
) -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text("utf-8"))
    files = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    (image,) = kustomization["images"]
    for kind in ("Deployment", "Job"):
        containers = _pod(resources[kind])["spec"]["containers"]
        assert [container["image"] for container in containers] == [image["name"]], kind


def test_the_selectors_pick_the_api_pods_and_never_the_migration(
    resources: dict[str, dict[str, Any]],
) -> None:
    deployment = resources["Deployment"]
    api_pods = _pod(deployment)["metadata"]["labels"]
    migration_pods = _pod(resources["Job"])["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": resources["Service"]["spec"]["selector"],
        "PodDisruptionBudget": resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector, kind
        assert _selects(selector, api_pods), kind
        assert not _selects(selector, migration_pods), kind
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_probes_ask_routes_of_the_application_on_its_port(
    resources: dict[str, dict[str, Any]],
) -> None:
    routes = set(create_app(Settings()).openapi()["paths"])
    (container,) = _pod(resources["Deployment"])["spec"]["containers"]
    ports = {port["name"] for port in container["ports"]} | {
        port["containerPort"] for port in container["ports"]
    }
    probes = {name: container[name]["httpGet"] for name in container if name.endswith("Probe")}
    assert set(probes) == {"startupProbe", "livenessProbe", "readinessProbe"}
    for name, probe in probes.items():
        assert probe["path"] in routes, name
        assert probe["port"] in ports, name
    # Liveness checks the process alone; readiness the database, schema and rule set.
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    service_port = resources["Service"]["spec"]["ports"][0]["targetPort"]
    assert service_port in ports


def test_the_configmap_and_the_secret_make_a_configuration_production_accepts(
    resources: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_names = {f"CARELEVEL_{name.upper()}" for name in Settings.model_fields}
    data: dict[str, str] = resources["ConfigMap"]["data"]
    assert sorted(set(data) - settings_names) == [], "not a setting"
    assert not set(data) & set(SECRET), "secret values belong in the Secret"
    monkeypatch.chdir(tmp_path)  # no .env file
    for variable in [name for name in os.environ if name.startswith("CARELEVEL_")]:
        monkeypatch.delenv(variable)
    for name, value in (data | SECRET).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.public_url is not None
    assert settings.rate_limit_backend == "redis", "several processes share one count"


def test_every_pod_reads_the_same_settings_and_no_service_links(
    resources: dict[str, dict[str, Any]],
) -> None:
    """Kubernetes puts ``<SERVICE>_PORT=tcp://…`` into the pods of a namespace with a Service:
    for the Service ``carelevel``, CARELEVEL_PORT, a setting that would stop them. No pod may
    take these service links."""
    link = resources["Service"]["metadata"]["name"].upper().replace("-", "_") + "_PORT"
    assert link.removeprefix("CARELEVEL_").lower() in Settings.model_fields
    sources = []
    for kind in ("Deployment", "Job"):
        pod = _pod(resources[kind])["spec"]
        assert pod["enableServiceLinks"] is False, kind
        (container,) = pod["containers"]
        sources.append(container["envFrom"])
    api, migration = sources
    # The migration reads the API's settings (it may add a Secret of its own, listed last).
    assert migration[: len(api)] == api
    assert {"configMapRef": {"name": resources["ConfigMap"]["metadata"]["name"]}} in api


def test_other_variables_are_ones_the_guide_documents(resources: dict[str, dict[str, Any]]) -> None:
    guide = GUIDE.read_text("utf-8")
    table = guide.split("Other variables the service reads:\n\n", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert "FORWARDED_ALLOW_IPS" in documented
    (container,) = _pod(resources["Deployment"])["spec"]["containers"]
    for variable in container.get("env", []):
        assert variable["name"] in documented, variable["name"]


def test_shutdown_fits_in_the_grace_period(
    resources: dict[str, dict[str, Any]],
) -> None:
    pod = _pod(resources["Deployment"])["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    shutdown = int(resources["ConfigMap"]["data"]["CARELEVEL_SHUTDOWN_TIMEOUT_SECONDS"])
    assert int(command[1]) + shutdown < pod["terminationGracePeriodSeconds"]


def test_pods_run_as_the_images_user_on_a_read_only_root_filesystem(
    resources: dict[str, dict[str, Any]],
) -> None:
    users = re.findall(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text("utf-8"), re.M)
    (user, group) = users[-1]
    for kind in ("Deployment", "Job"):
        pod = _pod(resources[kind])["spec"]
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
            int(user),
            int(group),
        ), kind
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, kind
        tmp = [mount["name"] for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert tmp, f"{kind}: a writable /tmp"
        assert "emptyDir" in volumes[tmp[0]], kind


def test_retention_runs_nightly_one_run_at_a_time_as_the_migration_does(
    resources: dict[str, dict[str, Any]],
) -> None:
    """The CronJob runs `carelevel retention expire` with the release's image and the
    migration's settings (it changes partitions, as a migration changes the schema), never two
    runs at once, in a pod hardened as the others and that no selector of the API's picks."""
    cronjob = resources["CronJob"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert command[:1] == ["carelevel"]
    assert cli._parser().parse_args(command[1:]).handler.__name__ == "_retention_expire"
    migration = _pod(resources["Job"])
    (migrate,) = migration["spec"]["containers"]
    for key in ("image", "envFrom", "securityContext"):
        assert container[key] == migrate[key], key
    assert pod["spec"]["securityContext"] == migration["spec"]["securityContext"]
    assert pod["spec"]["enableServiceLinks"] is False
    for selector in (
        resources["Service"]["spec"]["selector"],
        resources["Deployment"]["spec"]["selector"]["matchLabels"],
    ):
        assert not _selects(selector, pod["metadata"]["labels"])
