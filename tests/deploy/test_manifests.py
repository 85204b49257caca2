"""deploy/: the compose file and the Kubernetes manifests, checked offline.

The compose file against the compose specification's JSON schema; the kustomization,
with keys from the real ceremony, rendered by ``kubectl kustomize`` and checked by
``kubernetes-validate --strict``. Then what an operator relies on: one image for every
node, each node given only its own keys, a volume each, health probes, a quorum kept.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
STRAITS = str(Path(sys.executable).parent / "straits")
VALIDATORS = [f"validator-{i}" for i in range(1, 5)]
NODES = {**{v: "validator" for v in VALIDATORS}, "central-bank": "central-bank", "bank-a": "bank",
         "bank-b": "bank"}
HEALTH = ["straits", "health", "--config", "/etc/straits/node.toml"]


def _compose_schema() -> dict:  # type: ignore[type-arg]
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_the_compose_file_follows_the_compose_specification(compose: dict) -> None:  # type: ignore[type-arg]
    jsonschema.validate(compose, _compose_schema())


def test_the_schema_check_refuses_a_misspelt_compose_key(compose: dict) -> None:  # type: ignore[type-arg]
    broken = json.loads(json.dumps(compose))
    broken["services"]["bank-a"]["volume"] = broken["services"]["bank-a"].pop("volumes")
    with pytest.raises(jsonschema.ValidationError, match="volume"):
        jsonschema.validate(broken, _compose_schema())


def test_every_compose_node_runs_the_one_image_with_its_own_keys_and_volume(
        compose: dict) -> None:  # type: ignore[type-arg]
    services = compose["services"]
    assert set(services) == {*NODES, "prometheus"}
    images = {services[n]["image"] for n in NODES}
    assert images == {"${STRAITS_IMAGE:-localhost/straits:latest}"}
    volumes = set()
    for node, command in NODES.items():
        service = services[node]
        assert service["command"] == [command, "--config", "/etc/straits/node.toml"]
        assert service["healthcheck"]["test"] == ["CMD", *HEALTH]
        keys, data = service["volumes"]
        assert keys == f"${{STRAITS_HOSTS:-./hosts}}/{node}:/etc/straits:ro", node
        assert data == f"{node}-data:/var/lib/straits", node
        volumes.add(data.split(":")[0])
        assert all(p.startswith("127.0.0.1:") for p in service["ports"]), \
            f"{node} publishes a port beyond loopback"
    assert volumes <= set(compose["volumes"]) and len(volumes) == len(NODES)


def test_compose_prometheus_scrapes_every_node_with_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    targets = {c["labels"]["node"]: c["targets"] for c in config["scrape_configs"][0]
               ["static_configs"]}
    assert targets == {n: [f"{n}:9100"] for n in NODES}
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:  # type: ignore[type-arg]
    """The kustomization rendered with the keys of a real ceremony, in a copy of deploy/."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is missing: run `make deploy-tools`")
    work = tmp_path_factory.mktemp("k8s")
    shutil.copytree(DEPLOY / "k8s", work / "k8s", ignore=shutil.ignore_patterns("hosts"))
    subprocess.run(["sh", str(DEPLOY / "ceremony.sh"), str(work / "k8s" / "hosts")], check=True,
                   env={**os.environ, "STRAITS": STRAITS,
                        "VALIDATOR_HOST": "validator-%d-0.validators"},
                   capture_output=True)
    out = subprocess.run(["kubectl", "kustomize", str(work / "k8s")], check=True,
                         capture_output=True, text=True).stdout
    (work / "rendered.yaml").write_text(out)
    return work / "rendered.yaml", [d for d in yaml.safe_load_all(out) if d]


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict",
         "-k", "1.32.0", str(path)], capture_output=True, text=True)


def test_the_rendered_manifests_pass_strict_kubernetes_validation(
        rendered: tuple[Path, list[dict]]) -> None:  # type: ignore[type-arg]
    result = _validate(rendered[0])
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_refuses_an_unknown_field(
        rendered: tuple[Path, list[dict]], tmp_path: Path) -> None:  # type: ignore[type-arg]
    documents = json.loads(json.dumps(rendered[1]))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(documents))
    result = _validate(broken)
    assert result.returncode != 0 and "readinesProbe" in result.stdout + result.stderr


def _by_kind(documents: list[dict], kind: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_each_validator_is_a_stateful_set_with_its_own_volume_and_only_its_own_keys(
        rendered: tuple[Path, list[dict]]) -> None:  # type: ignore[type-arg]
    documents = rendered[1]
    sets = _by_kind(documents, "StatefulSet")
    secrets = _by_kind(documents, "Secret")
    assert sorted(sets) == VALIDATORS
    for name, stateful in sets.items():
        spec = stateful["spec"]
        assert spec["serviceName"] == "validators"
        assert [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]] == ["data"]
        pod = spec["template"]["spec"]
        (secret_volume,) = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        assert secret_volume.startswith(f"{name}-") and secret_volume in secrets
        # The Secret holds this validator's own keys: the ledger key genesis names for it.
        genesis = json.loads(_secret_file(secrets[secret_volume], "genesis.json"))
        own = next(v["key"] for v in genesis["validators"] if v["id"] == name)
        request = json.loads(_host_file(rendered[0], name, "request.json"))
        assert request["ledger_key"] == own
        config = _secret_file(secrets[secret_volume], "node.toml")
        for peer in range(1, 5):  # peers by their names under the headless Service
            assert f'address = "validator-{peer}-0.validators:7000"' in config
        container = pod["containers"][0]
        assert container["args"] == ["validator", "--config", "/etc/straits/node.toml"]
        assert container["readinessProbe"]["exec"]["command"] == HEALTH
        assert container["livenessProbe"]["exec"]["command"] == HEALTH
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        annotations = spec["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9100"
    service = _by_kind(documents, "Service")["validators"]
    assert service["spec"]["clusterIP"] == "None"


def _secret_file(secret: dict, name: str) -> str:  # type: ignore[type-arg]
    return base64.b64decode(secret["data"][name]).decode()


def _host_file(rendered: Path, host: str, name: str) -> str:
    return (rendered.parent / "k8s" / "hosts" / host / name).read_text()


def test_the_disruption_budget_keeps_a_quorum_of_validators(
        rendered: tuple[Path, list[dict]]) -> None:  # type: ignore[type-arg]
    documents = rendered[1]
    (budget,) = _by_kind(documents, "PodDisruptionBudget").values()
    selector = budget["spec"]["selector"]["matchLabels"]
    covered = [name for name, s in _by_kind(documents, "StatefulSet").items()
               if selector.items() <= s["spec"]["template"]["metadata"]["labels"].items()]
    assert sorted(covered) == VALIDATORS
    quorum = -(-2 * len(VALIDATORS) // 3)  # ceil(2n/3) commit seals
    assert budget["spec"]["minAvailable"] == quorum == 3


def test_bank_and_central_bank_nodes_are_deployments_with_their_own_keys(
        rendered: tuple[Path, list[dict]]) -> None:  # type: ignore[type-arg]
    documents = rendered[1]
    deployments = _by_kind(documents, "Deployment")
    assert sorted(deployments) == ["bank-a", "bank-b", "central-bank"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["containers"][0]["args"][0] == NODES[name]
        (secret,) = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        assert secret.startswith(f"{name}-")
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
    for secret in _by_kind(documents, "Secret").values():
        node = secret["metadata"]["name"].rsplit("-", 1)[0]
        config = _secret_file(secret, "node.toml")
        assert f'id = "{node}"' in config, f"secret {secret['metadata']['name']} holds another node"
