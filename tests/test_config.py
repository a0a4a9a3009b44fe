"""T0: the stack config model accepts good config and names every mistake with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    UPSTREAM_DEFAULT_PASSWORD,
    ConfigError,
    dev_client_secret,
    parse_stack_config,
    profile_name_for,
)
from tests.helpers import ALICE, REPO, UPSTREAM_CLIENT_SECRET, base_raw


def errors_of(raw: dict[str, Any], secret_keys: set[str] | None = None, stack: str = "prod") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_stack_config(stack, raw, {"auth"} if secret_keys is None else secret_keys)
    return [str(p) for p in info.value.problems]


def test_valid_config_is_typed(stack_config_factory):
    cfg = stack_config_factory()
    assert cfg.cluster.provider == "existing"
    assert [u.email for u in cfg.auth.users] == ["alice@example.org", "bob@example.org"]
    assert cfg.storage.claims["mysql-pv-claim"].storage_class == "premium"
    assert cfg.profiles[0].name == "kubeflow-alice-example-org"
    assert cfg.profiles[0].quota.cpu == "8"
    assert "alice-Secret-1" not in repr(cfg)  # secrets never show in reprs or logs


MISTAKES = [
    ("unknown provider", {"cluster": {"provider": "openstack"}}, "cluster.provider = 'openstack': must be one of"),
    ("bad cluster name", {"cluster": {"provider": "existing", "name": "My_Cluster",
                                      "existing": {"kubeconfig": "/x"}}}, "cluster.name = 'My_Cluster'"),
    ("existing without kubeconfig", {"cluster": {"provider": "existing", "existing": {}}},
     "cluster.existing.kubeconfig = None: is required"),
    ("unknown storage mode", {"storage": {"mode": "ceph"}}, "storage.mode = 'ceph': must be one of"),
    ("nfs without server", {"storage": {"mode": "nfs-subdir", "nfs": {"path": "/export"}}},
     "storage.nfs.server = None: is required"),
    ("bad claim size", {"storage": {"claims": {"katib-mysql": {"size": "lots"}}}},
     "storage.claims.katib-mysql.size = 'lots': must be a Kubernetes quantity"),
    ("unknown component", {"kubeflow": {"include": ["kubeflow-ui"]}},
     "kubeflow.include[0] = 'kubeflow-ui': unknown component"),
    ("bad release tag", {"kubeflow": {"release": "latest"}}, "kubeflow.release = 'latest': must be a release tag"),
    ("unknown KServe mode", {"kubeflow": {"kserve": {"deploymentMode": "Raw"}}},
     "kubeflow.kserve.deploymentMode = 'Raw': must be one of: Serverless, RawDeployment"),
    ("unknown KServe setting", {"kubeflow": {"kserve": {"mode": "RawDeployment"}}},
     "kubeflow.kserve.mode = 'RawDeployment': unknown setting; expected one of: deploymentMode"),
    ("bad email", {"auth": {"users": [{**ALICE, "email": "alice"}], "oidcClient": {"secret": "x" * 20}}},
     "auth.users[0].email = 'alice': must be an e-mail address"),
    ("no users", {"auth": {"oidcClient": {"secret": "x" * 20}}}, "auth.users = None: list at least one user"),
    ("default password outside dev", {"auth": {"users": [{**ALICE, "password": UPSTREAM_DEFAULT_PASSWORD}],
                                                "oidcClient": {"secret": "x" * 20}}},
     "auth.users[0].password = ****: is the public upstream default"),
    ("default client secret outside dev",
     {"auth": {"users": [ALICE], "oidcClient": {"secret": UPSTREAM_CLIENT_SECRET}}},
     "auth.oidcClient.secret = ****: is the public upstream default"),
    ("no client secret", {"auth": {"users": [ALICE]}}, "auth.oidcClient.secret = None: set one with"),
    ("password and hash", {"auth": {"users": [{**ALICE, "passwordHash": "$2y$10$" + "a" * 53}],
                                    "oidcClient": {"secret": "x" * 20}}},
     "auth.users[0].passwordHash = ****: set password or passwordHash, not both"),
    ("not a bcrypt hash", {"auth": {"users": [{"email": "a@b.org", "passwordHash": "md5:abc"}],
                                    "oidcClient": {"secret": "x" * 20}}},
     "auth.users[0].passwordHash = ****: must be a bcrypt hash"),
    ("duplicate user", {"auth": {"users": [ALICE, ALICE], "oidcClient": {"secret": "x" * 20}}},
     "auth.users[1].email = 'alice@example.org': appears twice"),
    ("quota typo", {"profiles": [{"owner": "a@b.org", "quota": {"cpus": "4"}}]},
     "profiles[0].quota.cpus = '4': unknown setting"),
    ("unknown top-level key", {"clsuter": {}}, "kubeflow-stacks:clsuter = {}: unknown setting"),
    ("local-path on a cloud", {"cluster": {"provider": "eks", "eks": {"region": "eu-west-1"}},
                               "storage": {"mode": "local-path"}}, "storage.mode = 'local-path'"),
    ("gke without project", {"cluster": {"provider": "gke", "gke": {"region": "europe-west1"}}},
     "cluster.gke.project = None: is required"),
    # Malformed values that once passed without a word.
    ("adopt as a word", {"cluster": {"provider": "kind", "adopt": "yes"}},
     "cluster.adopt = 'yes': must be true or false"),
    ("adopt an existing cluster", {"cluster": {"provider": "existing", "adopt": True,
                                               "existing": {"kubeconfig": "/x"}}},
     "cluster.adopt = True: applies to clusters the stack creates"),
    ("devStack as a word", {"devStack": "sure"}, "devStack = 'sure': must be true or false"),
    ("port as a word", {"cluster": {"provider": "kind", "kind": {"extraPortMappings": [
        {"containerPort": "http", "hostPort": 8080}]}}},
     "cluster.kind.extraPortMappings[0].containerPort = 'http': must be a whole number"),
    ("port out of range", {"cluster": {"provider": "kind", "kind": {"extraPortMappings": [
        {"containerPort": 80, "hostPort": 80800}]}}}, "ports must be between 1 and 65535"),
    ("issuer not a URL", {"cluster": {"provider": "kind", "kind": {"serviceAccountIssuer": "kubernetes"}}},
     "cluster.kind.serviceAccountIssuer = 'kubernetes': must be an https URL"),
    ("relative signing key", {"cluster": {"provider": "kind", "kind": {"serviceAccountSigningKeyFile": "sa.key"}}},
     "cluster.kind.serviceAccountSigningKeyFile = 'sa.key': must be an absolute path"),
    ("minikube memory", {"cluster": {"provider": "minikube", "minikube": {"memory": "lots"}}},
     "cluster.minikube.memory = 'lots': must be a size"),
    ("minikube driver", {"cluster": {"provider": "minikube", "minikube": {"driver": "lxc"}}},
     "cluster.minikube.driver = 'lxc': must be one of"),
    ("minikube version", {"cluster": {"provider": "minikube", "minikube": {"kubernetesVersion": "1.34"}}},
     "cluster.minikube.kubernetesVersion = '1.34': must be a Kubernetes version"),
    ("managed version", {"cluster": {"provider": "eks", "eks": {"region": "eu-west-1", "kubernetesVersion": "latest"}}},
     "cluster.eks.kubernetesVersion = 'latest'"),
    ("nfs path relative", {"storage": {"mode": "nfs-subdir", "nfs": {"server": "10.0.0.2", "path": "export"}}},
     "storage.nfs.path = 'export': must be an absolute path"),
    ("nfs server with a scheme", {"storage": {"mode": "nfs-subdir", "nfs": {"server": "nfs://x", "path": "/e"}}},
     "storage.nfs.server = 'nfs://x': must be a host name"),
    ("static path relative", {"storage": {"mode": "static", "staticHostPath": "vols"}},
     "storage.staticHostPath = 'vols': must be an absolute path"),
    ("claim class not a name", {"storage": {"claims": {"katib-mysql": {"storageClass": "Fast SSD"}}}},
     "storage.claims.katib-mysql.storageClass = 'Fast SSD': must be a StorageClass name"),
    ("short client secret", {"auth": {"users": [ALICE], "oidcClient": {"secret": "short"}}},
     "auth.oidcClient.secret = ****: must be at least 16 characters"),
    ("redirect not a URI", {"auth": {"users": [ALICE], "oidcClient": {"secret": "x" * 20,
                                                                      "redirectURIs": ["callback"]}}},
     "auth.oidcClient.redirectURIs[0] = 'callback'"),
    ("issuer path", {"auth": {"users": [ALICE], "oidcClient": {"secret": "x" * 20},
                              "issuer": "https://kf.example.org/auth"}},
     "auth.issuer = 'https://kf.example.org/auth': must end in /dex"),
    ("exclude what others need", {"kubeflow": {"exclude": ["profiles"]}},
     "kubeflow.exclude[0] = 'profiles': the Pod Security labels"),
    ("exclude the namespace", {"kubeflow": {"exclude": ["kubeflow-namespace"]}},
     "kubeflow.exclude[0] = 'kubeflow-namespace': profiles needs kubeflow-namespace"),
]


@pytest.mark.parametrize(("overrides", "expected"), [(o, e) for _, o, e in MISTAKES],
                         ids=[n for n, _, _ in MISTAKES])
def test_each_mistake_is_named_with_its_fix(overrides, expected):
    messages = errors_of(base_raw(**overrides))
    assert any(expected in m for m in messages), messages


def test_password_in_plain_text_config_is_refused():
    messages = errors_of(base_raw(), secret_keys=set())
    assert any("auth.users[0].password = ****: is stored as plain text; set it as a secret with "
               "`pulumi config set --secret --path 'auth.users[0].password'" in m for m in messages), messages
    assert not any("alice-Secret-1" in m for m in messages)


def test_all_problems_reported_at_once():
    raw = base_raw(cluster={"provider": "nope"}, storage={"mode": "nope"})
    assert len(errors_of(raw)) == 2


def test_dev_stack_gets_upstream_demo_user():
    cfg = parse_stack_config("dev", {"devStack": True}, set())
    assert [u.email for u in cfg.auth.users] == ["user@example.com"]
    assert cfg.auth.users[0].password.reveal() == UPSTREAM_DEFAULT_PASSWORD
    assert cfg.auth.client_secret.reveal() == dev_client_secret("dev") != UPSTREAM_CLIENT_SECRET
    assert parse_stack_config("dev", {"devStack": True}, set()).auth.client_secret == cfg.auth.client_secret
    assert [p.name for p in cfg.profiles] == ["kubeflow-user-example-com"]


def test_profile_names_follow_upstream():
    assert profile_name_for("user@example.com") == "kubeflow-user-example-com"
    assert profile_name_for("First.Last@Corp.io") == "kubeflow-first-last-corp-io"


def _stack_files() -> list[Path]:
    return sorted((REPO / "stacks").glob("Pulumi.*.yaml"))


def test_every_expected_stack_exists():
    names = {p.name.split(".")[1] for p in _stack_files()}
    assert names == {"dev", "minikube", "existing", "sim", "eks", "gke", "aks", "kind-local", "minikube-local"}


@pytest.mark.parametrize("path", _stack_files(), ids=lambda p: p.name)
def test_stack_files_validate(path: Path):
    """Each stack file parses; non-dev stacks ask for exactly the secrets a user must set."""
    raw = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(path.read_text())["config"].items()}
    stack = path.name.split(".")[1]
    if raw.get("devStack"):
        cfg = parse_stack_config(stack, raw, set())
        assert cfg.dev
        return
    with pytest.raises(ConfigError) as info:
        parse_stack_config(stack, raw, set())
    keys = sorted(p.key for p in info.value.problems)
    assert keys == ["auth.oidcClient.secret", "auth.users"], info.value
    raw["auth"] = {"users": [ALICE], "oidcClient": {"secret": "s" * 24}}
    cfg = parse_stack_config(stack, raw, {"auth"})
    assert cfg.cluster.provider == raw["cluster"]["provider"]


# References to upstream objects: checked against the release's map when the config is parsed.


def test_a_claim_the_release_does_not_have_is_refused_when_parsed_with_the_valid_names():
    messages = errors_of(base_raw(storage={"claims": {"minio-pvc": {"size": "1Gi"}}}))
    assert messages == ["kubeflow-stacks:storage.claims.minio-pvc = 'minio-pvc': no such claim in v1.11.0; "
                        "claims of the selected components: katib-mysql, mysql-pv-claim, seaweedfs-pvc"]
    # The claim is v1.10.2's (MinIO, before SeaweedFS): that release's map has it.
    cfg = parse_stack_config("prod", base_raw(kubeflow={"release": "v1.10.2"},
                                              storage={"claims": {"minio-pvc": {"size": "1Gi"}}}), {"auth"})
    assert set(cfg.storage.claims) == {"minio-pvc"}


def test_a_claim_of_a_component_the_stack_leaves_out_is_refused_naming_the_component():
    messages = errors_of(base_raw(kubeflow={"components": "core"}))  # base_raw overrides katib's claim
    assert messages == ["kubeflow-stacks:storage.claims.katib-mysql = 'katib-mysql': a claim of katib, which the "
                        "stack leaves out; remove the override or deploy katib; claims of the selected "
                        "components: mysql-pv-claim, seaweedfs-pvc"]


def test_the_standin_gateway_beside_istio_is_refused_when_parsed():
    messages = errors_of(base_raw(gateway={"kind": "standin"}))
    assert len(messages) == 1
    assert messages[0].startswith("kubeflow-stacks:gateway.kind = 'standin': takes the place of Istio's ingress "
                                  "gateway, but the stack deploys istio: add istio to kubeflow.exclude")


def test_a_profile_owner_must_be_a_user_who_can_sign_in():
    carol = {"owner": "carol@example.org"}
    messages = errors_of(base_raw(profiles=[carol]))
    assert messages == ["kubeflow-stacks:profiles[0].owner = 'carol@example.org': not a user of this stack's Dex, "
                        "so no one can sign in as the owner; users are: alice@example.org, bob@example.org; add "
                        "them to auth.users, or add a connector (auth.connectors) that signs them in"]
    # Where it does not matter: a group owner, or users a connector brings.
    parse_stack_config("prod", base_raw(profiles=[{**carol, "ownerKind": "Group"}]), {"auth"})
    auth = {**base_raw()["auth"], "connectors": [{"type": "github", "id": "github", "name": "GitHub"}]}
    parse_stack_config("prod", base_raw(profiles=[carol], auth=auth), {"auth"})


def test_reference_problems_come_with_every_other_problem_at_once():
    raw = base_raw(storage={"mode": "ceph", "claims": {"minio-pvc": {}}}, gateway={"kind": "standin"},
                   profiles=[{"owner": "carol@example.org"}])
    keys = sorted(m.split(" = ")[0] for m in errors_of(raw))
    assert keys == ["kubeflow-stacks:gateway.kind", "kubeflow-stacks:profiles[0].owner",
                    "kubeflow-stacks:storage.claims.minio-pvc", "kubeflow-stacks:storage.mode"]


def test_a_release_without_a_map_is_checked_when_its_map_is_derived_not_against_another_release():
    # model-registry is no component of v1.11.0's map; a later release may have it. Its tree decides
    # (infra/manifests/derive.py: component_map_for), not the nearest release's map.
    cfg = parse_stack_config("prod", base_raw(kubeflow={"release": "v1.12.0", "include": ["model-registry"]},
                                              storage={"claims": {"model-registry-db-pvc": {}}}), {"auth"})
    assert cfg.kubeflow.include == ("model-registry",)


def test_the_release_map_is_a_leaf_that_config_imports_without_a_cycle():
    probe = ("import sys, infra.manifests.components; "
             "print(sorted(m for m in sys.modules if m.startswith('infra')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert out.strip() == "['infra', 'infra.errors', 'infra.manifests', 'infra.manifests.components']"
