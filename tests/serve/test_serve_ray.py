"""`unetpp serve --engine ray`: the same app as a Ray Serve deployment with 2 replicas on a local Ray gives the same
JSON bytes as the local server (timings aside, which are measured per request)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_helpers import TOKEN, Server, start_server, stop_server

pytest.importorskip("ray.serve", reason="--engine ray needs Ray Serve: pip install 'unetpp[ray]'")

TIMINGS = re.compile(rb'"timings":\{[^}]*\}')


@pytest.mark.slow
@pytest.mark.cluster  # Ray Serve: `make test-published`
def test_ray_serve_two_replicas_answer_like_the_local_server(server: Server, images: list[Path],
                                                            tmp_path: Path) -> None:
    # the default runtime, as the local server runs it (not the suite's fp32 override)
    srv = start_server(["--engine", "ray", "--replicas", "2", "--num-cpus-per-replica", "1", "--token", TOKEN],
                       tmp_path / "ray_serve.log", cwd=tmp_path, token=TOKEN, wait_s=300,
                       env={"UNETPP_DEFAULT_RUNTIME": None})
    try:
        def ask(s: Server, p: Path) -> bytes:
            with s.client() as c:
                r = c.post("/v1/segment?include=labels", files={"file": (p.name, p.read_bytes())})
            assert r.status_code == 200, r.text
            return TIMINGS.sub(b"", r.content)

        with ThreadPoolExecutor(4) as pool:
            on_ray = list(pool.map(lambda p: ask(srv, p), images[:4]))
        local = [ask(server, p) for p in images[:4]]
        assert on_ray == local
        with srv.client() as c:
            assert c.get("/v1/model").json()["sha256"] == server.client().get("/v1/model").json()["sha256"]
            assert c.get("/v1/ready").status_code == 200 and c.get("/v1/segment").status_code == 405
            assert c.get("/v1/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
    finally:
        stop_server(srv)
    assert "Ray Serve, 2 replica(s)" in (tmp_path / "ray_serve.log").read_text()
