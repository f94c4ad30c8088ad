"""`unetpp serve --engine ray`: the same FastAPI app as a Ray Serve deployment (`@serve.deployment` +
`@serve.ingress(app)`), N replicas, each with its own runtime and batcher (Ray Serve runs the app's lifespan in
every replica). Ray Serve's proxy listens on --host/--port and spreads requests over the replicas."""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from typing import Any

from unetpp.core.ray import RayOptions, ray_session
from unetpp.errors import RuntimeUnavailable
from unetpp.serve.app import create_app
from unetpp.serve.service import ServeSettings

APP_NAME = "unetpp"


def build_deployment(settings: ServeSettings, replicas: int, cpus_per_replica: float) -> Any:
    """The bound Ray Serve application (not yet running)."""
    try:
        from ray import serve
    except ImportError:
        raise RuntimeUnavailable("--engine ray needs Ray Serve: pip install 'unetpp[ray]'") from None
    app = create_app(settings)

    @serve.deployment(name="UnetppServe", num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica},
                      max_ongoing_requests=256)
    @serve.ingress(app)
    class UnetppServe:
        """One replica: the app's lifespan opens the model and starts this replica's batcher."""

    return UnetppServe.bind()


def serve_on_ray(settings: ServeSettings, address: str | None, replicas: int, cpus_per_replica: float) -> int:
    """Deploy, print the URL, serve until Ctrl-C or SIGTERM, then tear the deployment (and a local Ray) down."""
    from ray import serve

    if settings.threads is None:  # replicas share the machine: each runtime gets its own CPUs' worth of threads
        settings = dataclasses.replace(settings, threads=max(1, math.floor(cpus_per_replica)))

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    opts = RayOptions(address=address, num_workers=replicas, threads=max(1, math.ceil(cpus_per_replica)),
                      progress=False)
    with ray_session(opts) as cluster:
        try:
            serve.start(http_options={"host": settings.host, "port": settings.port})
            serve.run(build_deployment(settings, replicas, cpus_per_replica), name=APP_NAME, route_prefix="/")
            print(f"unetpp serve (Ray Serve, {replicas} replica(s), Ray {cluster['ray_version']}, "
                  f"{cluster['mode']}): http://{settings.host}:{settings.port}/", flush=True)
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            serve.shutdown()
    return 0
