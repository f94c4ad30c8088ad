"""Start and stop a real `unetpp serve` process for the tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"
TOKEN = "test-token-1234"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    token: str | None
    save_dir: Path | None
    log: Path

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=120, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], log: Path, cwd: Path | None = None, env: dict[str, str | None] | None = None,
                 token: str | None = None, save_dir: Path | None = None, wait_s: float = 180) -> Server:
    """`python -m unetpp serve --port P ARGS` on 127.0.0.1, returned once /v1/health says ready."""
    port = free_port()
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}  # None: unset it
    full_env["PYTHONPATH"] = os.pathsep.join([str(SRC), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    full_env.pop("UNETPP_TOKEN", None)
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "unetpp", "serve", "--port", str(port), *args],
                                stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, env=full_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"unetpp serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            r = httpx.get(url + "/v1/health", timeout=2)
            if r.status_code == 200 and r.json().get("ready"):
                return Server(url, proc, token, save_dir, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"unetpp serve did not become ready in {wait_s} s:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
