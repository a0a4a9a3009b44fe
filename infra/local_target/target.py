"""Starting, describing and stopping the local conformance target.

`LocalTarget(workdir).up()` trains the sample models with kfp.local into the first namespace's
pipeline root in the artifact store's directory, writes every config, starts the artifact store
(S3, with per-namespace keys and Kubeflow's per-namespace policy), Dex, oauth2-proxy, one KServe
model server per profile namespace and the nginx gateway, waits for each to answer, and records
ports, process ids and the run's random credentials in `state.json` (mode 0600) so `down` in
another process can stop exactly what `up` started. Logs stay in `<workdir>/logs` after `down`,
for the diagnostics bundle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests
import yaml

from infra.local_target import configs, object_store
from infra.toolchain import find_binary as binary
from smoke_tests.local import (
    IRIS_MODEL,
    MNIST_MODEL,
    STATE_FILE,
    LocalState,
    LocalUser,
    default_workdir,
    running_state,
    runs_here,
)
from smoke_tests.process import free_port, pid_alive, spawn, stop_pid, stop_process
from smoke_tests.run import run
from smoke_tests.wait import WaitTimeout, wait_until

STORE_DIR = "object-store"


class LocalTargetError(RuntimeError):
    pass


class LocalTarget:
    """One local target in one working directory."""

    def __init__(self, workdir: Path | None = None, *, timeout: float = 120.0,
                 mnist_source: str = "digits") -> None:
        self.workdir = (workdir or default_workdir()).resolve()
        self.timeout = timeout
        self.mnist_source = mnist_source
        self.logs = self.workdir / "logs"
        self._children: dict[str, subprocess.Popen[str]] = {}
        self.state: LocalState | None = None

    @property
    def state_path(self) -> Path:
        return self.workdir / STATE_FILE

    # -- lifecycle ----------------------------------------------------------------------------

    def running_state(self) -> LocalState | None:
        """The recorded state if every recorded process is still alive, else None."""
        return running_state(self.workdir)

    def up(self, *, detach: bool = False) -> LocalState:
        """Start everything; on any failure stop what was started and raise with the logs' tails."""
        if self.running_state() is not None:
            raise LocalTargetError(f"a local target is already running in {self.workdir}; "
                                   "`kfstack local down` first")
        self.down()  # a stale state file from a run that died: stop what is left of it
        # Each run starts clean: fresh logs, configs and pipeline outputs (nothing else lives here).
        for sub in ("logs", "run", "tmp", "config", STORE_DIR):
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
            (self.workdir / sub).mkdir(parents=True)
        try:
            self.state = self._start(detach)
        except BaseException:
            self.down()
            raise
        self.state.save(self.state_path)
        return self.state

    def down(self) -> list[str]:
        """Stop what this target started (children of this process, or pids recorded by `up`)."""
        stopped = []
        for name, proc in reversed(list(self._children.items())):
            stop_process(proc)
            stopped.append(name)
        self._children.clear()
        if self.state_path.exists():
            state = LocalState.load(self.state_path)
            for name, pid in reversed(list(state.processes.items())):
                if name not in stopped and self._ours(pid) and stop_pid(pid):
                    stopped.append(name)
            self.state_path.unlink()
        return stopped

    def _ours(self, pid: int) -> bool:
        return runs_here(pid, self.workdir)

    def status(self) -> dict[str, str]:
        if not self.state_path.exists():
            return {}
        state = LocalState.load(self.state_path)
        return {name: ("running" if pid_alive(pid) and self._ours(pid) else "exited") + f" (pid {pid})"
                for name, pid in state.processes.items()}

    # -- start-up -----------------------------------------------------------------------------

    def _start(self, detach: bool) -> LocalState:
        dex_bin, proxy_bin, nginx_bin = binary("dex"), binary("oauth2-proxy"), binary("nginx")
        creds = configs.new_credentials()
        config = configs.stack_config(creds)
        namespaces = [p.name for p in config.profiles]
        ports = configs.Ports(gateway=free_port(), dex=free_port(), oauth2_proxy=free_port(),
                              dashboard=free_port(), deny=free_port(),
                              models={ns: free_port() for ns in namespaces})
        store = self._object_store_files(namespaces, port=free_port())
        models = self._train(Path(store["root"]) / store["pipeline_roots"][namespaces[0]])
        served = {namespaces[0]: {IRIS_MODEL: models["iris_model"], MNIST_MODEL: models["mnist_model"]}}
        for ns in namespaces[1:]:
            served[ns] = {IRIS_MODEL: models["iris_model"]}
        gateway = f"http://127.0.0.1:{ports.gateway}"
        cfg_dir = self.workdir / "config"

        self._launch("object-store", [sys.executable, "-m", "infra.local_target.object_store",
                                      "--root", store["root"], "--port", str(store["port"]),
                                      "--identities", store["identities"]], detach)
        self._await("object-store", f"http://{store['endpoint']}{object_store.HEALTH_PATH}")

        dex_cfg, dex_env = configs.dex_files(config, ports)
        (cfg_dir / "dex.yaml").write_text(yaml.safe_dump(dex_cfg, sort_keys=False), encoding="utf-8")
        self._launch("dex", [dex_bin, "serve", cfg_dir / "dex.yaml"], detach, env=dex_env)
        self._await("dex", f"http://127.0.0.1:{ports.dex}/dex/.well-known/openid-configuration")

        proxy_cfg, proxy_flags, proxy_env = configs.oauth2_proxy_files(config, ports)
        (cfg_dir / "oauth2_proxy.cfg").write_text(proxy_cfg, encoding="utf-8")
        self._launch("oauth2-proxy", [proxy_bin, f"--config={cfg_dir / 'oauth2_proxy.cfg'}", *proxy_flags],
                     detach, env=proxy_env)
        self._await("oauth2-proxy", f"http://127.0.0.1:{ports.oauth2_proxy}/ping")

        for ns, port in ports.models.items():
            serve = [f"--serve={name}={path}" for name, path in served[ns].items()]
            self._launch(f"models-{ns}", [sys.executable, "-m", "infra.local_target.model_server",
                                          "--port", str(port), *serve], detach)
        for ns, port in ports.models.items():
            for name in served[ns]:
                self._await(f"models-{ns}", f"http://127.0.0.1:{port}/v1/models/{name}")

        (cfg_dir / "nginx.conf").write_text(
            configs.nginx_conf(config, ports, workdir=str(self.workdir)), encoding="utf-8")
        run([nginx_bin, "-t", "-p", self.workdir, "-c", cfg_dir / "nginx.conf",
             "-e", self.logs / "nginx-error.log"], timeout=30)
        self._launch("nginx", [nginx_bin, "-p", self.workdir, "-c", cfg_dir / "nginx.conf",
                               "-e", self.logs / "nginx-error.log", "-g", "daemon off;"], detach)
        self._await("nginx", f"{gateway}/dex/.well-known/openid-configuration")

        return LocalState(
            workdir=str(self.workdir), started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            gateway_url=gateway, model_domain=configs.MODEL_DOMAIN,
            ports={**{k: v for k, v in asdict(ports).items() if k != "models"}, "models": dict(ports.models)},
            processes={name: proc.pid for name, proc in self._children.items()},
            users=[LocalUser(u.email, configs.profile_for(config, u.email), creds[f"password:{u.email}"])
                   for u in config.auth.users],
            models=served, mnist_samples=models["mnist_samples"], mnist_source=models["mnist_source"],
            hello_output=models["hello"],
            versions=self._versions(dex_bin, proxy_bin, nginx_bin),
            object_store={k: store[k] for k in ("endpoint", "root", "launchers", "keys")},
            runs={"iris": models["iris_run"], "mnist": models["mnist_run"]},
        )

    def _object_store_files(self, namespaces: list[str], *, port: int) -> dict[str, Any]:
        """Each namespace's key (fresh, random) with the profile controller's grants, written for the
        store (mode 0600), and its kfp-launcher ConfigMap; the bucket directory, empty."""
        root = self.workdir / STORE_DIR
        (root / object_store.BUCKET).mkdir(parents=True, exist_ok=True)
        keys = {ns: {"accesskey": "KFSTACK" + secrets.token_hex(8).upper(), "secretkey": secrets.token_urlsafe(30)}
                for ns in namespaces}
        identities = {key["accesskey"]: {"name": ns, "secret_key": key["secretkey"],
                                         "grants": list(object_store.namespace_grants(ns))}
                      for ns, key in keys.items()}
        path = self.workdir / "config" / "object-store-identities.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(identities, fh)
        launchers = {ns: object_store.launcher_configmap(ns) for ns in namespaces}
        # Where each root lies in the store's directory: minio://<bucket>/<prefix> -> <bucket>/<prefix>.
        pipeline_roots = {ns: cm["data"]["defaultPipelineRoot"].split("://", 1)[1] for ns, cm in launchers.items()}
        return {"endpoint": f"127.0.0.1:{port}", "port": port, "root": str(root), "identities": str(path),
                "launchers": launchers, "keys": keys, "pipeline_roots": pipeline_roots}

    def _train(self, pipeline_root: Path) -> dict[str, str]:
        """Run the sample pipelines with kfp.local into a namespace's pipeline root (a directory of
        the artifact store); their exported models are what gets served."""
        log = self.logs / "pipelines.log"
        result = run([sys.executable, "-m", "smoke_tests.pipelines.run_local",
                      "--root", pipeline_root, "--mnist-source", self.mnist_source],
                     timeout=600, check=False)
        log.write_text(result.stdout + result.stderr, encoding="utf-8")
        if result.returncode != 0:
            raise LocalTargetError(f"the sample pipelines failed under kfp.local (exit "
                                   f"{result.returncode}); see {log}\n{_tail(log)}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def _launch(self, name: str, argv: list[Any], detach: bool, env: dict[str, str] | None = None) -> None:
        self._children[name] = spawn(argv, env=env, log=self.logs / f"{name}.log", cwd=self.workdir,
                                     detach=detach)

    def _await(self, name: str, url: str) -> None:
        proc = self._children[name]
        log = self.logs / f"{name}.log"

        http = requests.Session()
        http.trust_env = False  # loopback: never through a proxy from the environment

        def check() -> tuple[bool, str]:
            resp = http.get(url, timeout=5)
            return resp.status_code == 200, f"GET {url} -> {resp.status_code}"

        def exited(_: str) -> str | None:
            return f"{name} exited with code {proc.returncode}" if proc.poll() is not None else None

        try:
            wait_until(check, timeout=self.timeout, interval=0.3, what=f"{name} to answer {url}",
                       fail_if=exited, retry_on=(requests.ConnectionError, requests.Timeout))
        except WaitTimeout as exc:
            raise LocalTargetError(f"{exc}\n--- {log} (tail) ---\n{_tail(log)}") from exc

    @staticmethod
    def _versions(*binaries: Path) -> dict[str, str]:
        found = {}
        for path, flag in zip(binaries, ("version", "--version", "-v"), strict=True):
            with contextlib.suppress(Exception):
                out = run([path, flag], timeout=20, check=False)
                found[path.name] = (out.stdout + out.stderr).strip().splitlines()[0]
        return found


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def describe(state: LocalState, *, show: Callable[[str], None] = print) -> None:
    """What `kfstack local up` prints: where things are (never the passwords)."""
    show(f"local target up in {state.workdir}")
    show(f"  gateway     {state.gateway_url}  (Dex at /dex, oauth2-proxy at /oauth2)")
    if state.object_store:
        show(f"  artifacts   http://{state.object_store['endpoint']} (S3; one key per namespace, in "
             f"{STATE_FILE})")
    for ns, models in state.models.items():
        for name in models:
            show(f"  model       {name}.{ns}.{state.model_domain} -> {state.gateway_url} (Host header)")
    for user in state.users:
        show(f"  user        {user.email} (profile {user.profile})")
    show(f"  passwords   in {Path(state.workdir) / STATE_FILE} (mode 0600)")
    show(f"  logs        {Path(state.workdir) / 'logs'}")
