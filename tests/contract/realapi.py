"""Run the real Kubernetes CRD API server (stock apiextensions-apiserver + etcd) on loopback.

The contract tests need what a cluster would say about our CRD: admission, defaulting, pruning,
CEL, /status, /scale, Table output, server-side apply. An emulator re-implements those from
memory; this module starts the real thing, built from Debian packages by
`scripts/real-apiserver.sh`, on free loopback ports with a fresh etcd data directory, and stops
both processes by PID. The server only serves `apiextensions.k8s.io` and custom resources (no
core API, no garbage collector, no root discovery); see `front.py` for the discovery half.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

__all__ = [
    "BUILD_SCRIPT",
    "REPO",
    "RealApiServer",
    "ServerUnavailable",
    "free_port",
    "install_crds",
    "obtain_binaries",
    "running_server",
    "wait_until_listable",
]

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "real-apiserver.sh"
# The stock binary has admission plugins that expect the core API (namespaces, webhooks, policies).
_DISABLED_ADMISSION = (
    "NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,"
    "ValidatingAdmissionPolicy,ValidatingAdmissionWebhook"
)


_START_ATTEMPTS = 3


class ServerUnavailable(RuntimeError):
    """The server binaries could not be obtained (no network, mirror outage, build failure)."""


def obtain_binaries(*, timeout: float = 1800.0) -> Path:
    """Run the build script (cached: seconds when warm) and return its bin/ directory.

    A failure here is an environment problem, not a contract failure, so it becomes
    `ServerUnavailable` with the script's own explanation for the skip message.
    """
    try:
        proc = subprocess.run(
            [str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerUnavailable(f"{BUILD_SCRIPT.name} could not run: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ServerUnavailable(f"{BUILD_SCRIPT.name} exited with {proc.returncode}: {tail}")
    lines = proc.stdout.strip().splitlines()
    bindir = Path(lines[-1]) / "bin" if lines else Path()
    if not (bindir / "apiextensions-apiserver").is_file():
        raise ServerUnavailable(f"{BUILD_SCRIPT.name} printed no usable build directory: {proc.stdout!r}")
    return bindir


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(certs: Path) -> None:
    """A throwaway CA, a server cert for 127.0.0.1, and a `system:masters` client cert.

    The stock server has no AlwaysAllow authorizer: anyone but `system:masters` is sent to a
    SubjectAccessReview the standalone server cannot answer, so the tests log in as that group.
    """
    certs.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=neuronfleet-contract-ca", cwd=certs)  # fmt: skip
    for name, subj, ext in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("admin", "/O=system:masters/CN=neuronfleet-contract", "extendedKeyUsage=clientAuth\n"),
    ):
        (certs / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=certs)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=certs)  # fmt: skip


@dataclass
class RealApiServer:
    """etcd + apiextensions-apiserver as two child processes, stopped by PID."""

    bindir: Path
    workdir: Path
    etcd_port: int = 0
    port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def certs(self) -> Path:
        return self.workdir / "certs"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def start(self, *, timeout: float = 60.0) -> None:
        _make_certs(self.certs)
        self.etcd_port = free_port()
        peer_port = free_port()
        self.port = free_port()
        self._write_kubeconfig()
        peer = f"http://127.0.0.1:{peer_port}"
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn(
            "etcd",
            [
                str(self.bindir / "etcd"),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        kubeconfig = str(self.kubeconfig)
        # The server insists on a "core" cluster for three lookups; pointing them at itself
        # (as system:masters) is what makes the stock binary run standalone.
        self._spawn(
            "apiserver",
            [
                str(self.bindir / "apiextensions-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--tls-cert-file={self.certs / 'server.crt'}",
                f"--tls-private-key-file={self.certs / 'server.key'}",
                f"--client-ca-file={self.certs / 'ca.crt'}",
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                "--authentication-skip-lookup",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--disable-admission-plugins={_DISABLED_ADMISSION}",
                "--enable-priority-and-fairness=false",
            ],
        )
        self._wait_live(timeout)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "realapi",
                    "cluster": {"server": self.url, "certificate-authority": str(self.certs / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.certs / "admin.crt"),
                        "client-key": str(self.certs / "admin.key"),
                    },
                }
            ],
            "contexts": [{"name": "realapi", "context": {"cluster": "realapi", "user": "admin"}}],
            "current-context": "realapi",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        with log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._procs.append(proc)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        ctx.load_cert_chain(str(self.certs / "admin.crt"), str(self.certs / "admin.key"))
        return ctx

    def _wait_live(self, timeout: float) -> None:
        """Poll `/livez` (the stock `/readyz` never turns ok standalone: no Service informer)."""
        deadline = time.monotonic() + timeout
        ctx = self.ssl_context()
        last: object = None
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/livez", context=ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(f"API server not live after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for name in ("etcd", "apiserver"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}.log ---\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM each child by PID (apiserver first, then etcd), SIGKILL what lingers."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        self._procs.clear()

    def configuration(self) -> client.Configuration:
        """A `kubernetes` client configuration: TLS verified against our CA, client cert login."""
        conf = client.Configuration()
        conf.host = self.url
        conf.ssl_ca_cert = str(self.certs / "ca.crt")
        conf.cert_file = str(self.certs / "admin.crt")
        conf.key_file = str(self.certs / "admin.key")
        conf.verify_ssl = True
        return conf

    def api_client(self) -> client.ApiClient:
        return client.ApiClient(self.configuration())


@contextlib.contextmanager
def running_server(bindir: Path, workdir: Path) -> Iterator[RealApiServer]:
    """Start etcd + the API server in `workdir`; stop both even when the body fails.

    Ports are picked free and bound a moment later by the children, so another process can take
    one in between; a failed start is retried on fresh ports and a fresh data directory.
    """
    for attempt in range(1, _START_ATTEMPTS + 1):
        server = RealApiServer(bindir=bindir, workdir=workdir / f"run{attempt}")
        server.workdir.mkdir(parents=True)
        try:
            server.start()
        except RuntimeError:
            server.stop()
            if attempt == _START_ATTEMPTS:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return


def install_crds(api: client.ApiClient, docs: Iterable[dict[str, Any]], *, timeout: float = 30.0) -> list[str]:
    """Create each CRD, wait until `Established`, and until its resource lists without a 429.

    Right after a CRD is created, the first list can answer 429 "storage is (re)initializing"
    while the watch cache warms up; waiting here keeps every test free of that race.
    """
    ext = client.ApiextensionsV1Api(api)
    names = []
    for doc in docs:
        ext.create_custom_resource_definition(doc)
        names.append(doc["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            crd = ext.read_custom_resource_definition(name)
            conds = {c.type: c for c in (crd.status.conditions or [])}
            est = conds.get("Established")
            if est is not None and est.status == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout} s: {conds}")
            time.sleep(0.05)
        version = next(v.name for v in crd.spec.versions if v.storage)
        wait_until_listable(api, crd.spec.group, version, crd.spec.names.plural, timeout=timeout)
    return names


def wait_until_listable(api: client.ApiClient, group: str, version: str, plural: str, *, timeout: float) -> None:
    objects = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        try:
            objects.list_cluster_custom_object(group, version, plural, limit=1)
            return
        except client.ApiException as exc:
            if exc.status not in (404, 429, 503) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
