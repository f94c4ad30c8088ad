"""The HTTP API and the page, as one FastAPI app (uvicorn runs it locally, Ray Serve in replicas).

    GET  /                 the page (static, no token: it holds no data; the token is typed into it)
    GET  /v1/health        liveness, no token
    GET  /v1/ready         the model is loaded and warm (503 before)
    GET  /v1/model         the model card
    POST /v1/segment       one image (multipart `file` + mode/scale/threshold/min_area/overlap) → JSON
    POST /v1/segment.zip   one or more `file`s → ZIP of labels/mask/overlay PNGs, nucleus CSVs and counts.csv
    GET  /metrics          Prometheus text format
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from unetpp.serve.batcher import ItemFailed
from unetpp.serve.inputs import OPTION_FIELDS, RequestError, decode_image, parse_include, parse_options, sanitize_stem
from unetpp.serve.service import ServeSettings, Service

API_VERSION = "v1"
# A ZIP request's file refused for itself (unreadable, not an image, too many pixels, a stack): listed in the ZIP's
# failures.csv while the other files are segmented; the single-image endpoint answers these with the status.
PER_FILE_STATUS = (400, 413, 415, 422)
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
ENDPOINTS = ("/", "/static", "/v1/health", "/v1/ready", "/v1/model", "/v1/segment", "/v1/segment.zip", "/metrics")
_FORM_DOC = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "PNG, TIFF or JPEG (repeat for .zip)"},
        "mode": {"type": "string", "enum": ["tile", "resize"], "default": "tile"},
        "scale": {"type": "string", "default": "auto", "description": "auto, fit, area, nuclei[@A] or a factor"},
        "threshold": {"type": "number", "description": "default: the model's own (the instance model's seed "
                      "foreground threshold t_fg; a 1-output model's probability threshold, 0.5)"},
        "min_area": {"type": "integer", "description": "default: the model's own (the instance model's seed "
                     "minimum area; 10 px for a 1-output model); an explicit value is in the image's pixels"},
        "overlap": {"type": "number", "default": 0.25}}}}}}}


class _MemoryParser(MultiPartParser):
    """Starlette's multipart parser with uploads kept in memory (never spooled to a temporary file)."""

    spool_max_size = 1 << 62


def _static() -> dict[str, bytes]:
    root = resources.files("unetpp.serve") / "static"
    return {name: (root / name).read_bytes() for name in STATIC}


class Gate:
    """What every request goes through before its work: the token, readiness, the queue's room, the query and
    the multipart form (read in memory up to the upload limit), and one image's way through the batcher."""

    def __init__(self, svc: Service, settings: ServeSettings) -> None:
        self.svc, self.settings, self.limits = svc, settings, settings.limits

    def authorize(self, request: Request) -> None:
        token = self.settings.token
        if not token:
            return
        got = request.headers.get("authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise RequestError(401, "missing or wrong token", "an `Authorization: Bearer <token>` header",
                               "no Authorization header" if not got else "another token")

    def need_ready(self) -> None:
        if not self.svc.ready:
            raise RequestError(503, "not ready", "a loaded, warm model", "the model still loading")

    def too_big(self, found: int | str) -> RequestError:
        return RequestError(413, "upload too large", f"at most {self.limits.max_upload_bytes} bytes",
                            f"{found} bytes" if isinstance(found, int) else found)

    def admit(self, n: int) -> None:
        """429 when the images already waiting plus this request's would pass --max-queue (all or none of a
        request's images are queued, so a ZIP is never half-done)."""
        depth, most = self.svc.batcher.depth(), self.settings.max_queue
        if depth + n > most:
            raise RequestError(429, "busy", f"room for {n} image(s) in the queue (--max-queue {most})",
                               f"{depth} image(s) waiting or running; retry later")

    @staticmethod
    def check_query(request: Request, allowed: tuple[str, ...]) -> None:
        bad = sorted(set(request.query_params) - set(allowed))
        if bad:
            raise RequestError(400, "unknown query parameter", ", ".join(allowed) or "none", ", ".join(bad))

    async def _body(self, request: Request) -> bytes:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise RequestError(400, "wrong content type", "multipart/form-data with a `file` field",
                               ctype or "no Content-Type")
        body, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.limits.max_upload_bytes + 65536:  # the files plus a little for the form's framing
                raise self.too_big(f"more than {size}")
            body.append(chunk)
        return b"".join(body)

    async def read_form(self, request: Request, many: bool) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
        """(uploads as (sanitized stem, bytes), option fields), the body read in memory up to the limit."""
        body = await self._body(request)

        async def replay() -> AsyncIterator[bytes]:
            yield body

        try:
            form = await _MemoryParser(request.headers, replay(), max_files=self.limits.max_files,
                                       max_fields=len(OPTION_FIELDS) + 8).parse()
        except MultiPartException as exc:
            raise RequestError(400, "malformed multipart form", "multipart/form-data with a `file` field",
                               exc.message) from None
        files: list[tuple[str, bytes]] = []
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if key == "file" and isinstance(value, UploadFile):
                files.append((sanitize_stem(value.filename, f"image{len(files) + 1}"), await value.read()))
            elif key == "file" or isinstance(value, UploadFile):
                raise RequestError(400, f"wrong field {key!r}", "`file` holding an uploaded image",
                                   "a text value" if key == "file" else f"a file upload in field {key!r}")
            elif key in fields:
                raise RequestError(400, f"repeated field {key!r}", "each option at most once", "it twice")
            else:
                fields[key] = str(value)
        self._check_files(files, many)
        return files, fields

    def _check_files(self, files: list[tuple[str, bytes]], many: bool) -> None:
        if not files:
            raise RequestError(400, "no image", "a `file` field holding an image", "no `file` field")
        if not many and len(files) > 1:
            raise RequestError(400, "several images", "one `file` (use /v1/segment.zip for several)",
                               f"{len(files)} files")
        if sum(len(d) for _, d in files) > self.limits.max_upload_bytes:
            raise self.too_big(sum(len(d) for _, d in files))

    async def segment_one(self, stem: str, data: bytes, options: Any) -> tuple[Any, dict[str, Any],
                                                                                dict[str, float]]:
        svc, settings = self.svc, self.settings
        image = await run_in_threadpool(decode_image, data, stem, self.limits)
        future = svc.batcher.submit(image, options)
        try:
            record, timings = await asyncio.wait_for(asyncio.shield(future), settings.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # still queued: the driver skips it
            raise RequestError(504, "timed out", f"a result within {settings.timeout_s:g} s",
                               f"image {stem!r} not done (queue depth {svc.batcher.depth()})") from None
        except ItemFailed as exc:
            if exc.internal:
                raise
            raise RequestError.from_error(422, exc) from None
        if settings.save_dir:
            await run_in_threadpool(svc.save, stem, image, options, record)
        return image, record, timings


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    """The app; it starts its Service in its lifespan unless one (already started) is given."""
    own = service is None
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if own:
            await run_in_threadpool(svc.start)
        yield
        if own:
            await run_in_threadpool(svc.stop)

    app = FastAPI(title="unetpp", version=API_VERSION, lifespan=lifespan,
                  description="UNet++ nuclei segmentation: segment images, batched across requests.")
    app.state.service = svc
    gate = Gate(svc, settings)
    _error_handlers(app, svc)
    _count_requests(app, svc, gate)
    _status_routes(app, svc, gate)
    _segment_routes(app, svc, gate)
    _page_routes(app, _static())
    return app


def _error_handlers(app: FastAPI, svc: Service) -> None:
    """Every refusal as JSON {error, expected, found}; an unexpected error as a 500 naming only its type."""

    @app.exception_handler(RequestError)
    async def _refused(request: Request, exc: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {"Retry-After": "1"} \
            if exc.status == 429 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        found = f"{request.method} {request.url.path}"
        return JSONResponse({"error": str(exc.detail), "expected": "one of " + ", ".join(ENDPOINTS),
                             "found": found}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "expected": "the documented fields",
                             "found": str(exc.errors())[:300]}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        svc.metrics.error("internal")
        return JSONResponse({"error": "internal error", "expected": "", "found": type(exc).__name__},
                            status_code=500)


def _count_requests(app: FastAPI, svc: Service, gate: Gate) -> None:
    """Each request counted by endpoint and status (and timed); a declared body over the limit refused unread."""

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        t0 = time.perf_counter()
        path = request.url.path
        endpoint = path if path in ENDPOINTS else ("/static" if path.startswith("/static/") else "other")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > gate.limits.max_upload_bytes + 65536:
            response: Response = JSONResponse(gate.too_big(int(declared)).body(), status_code=413)
        else:
            try:
                response = await call_next(request)
            except Exception as exc:  # noqa: BLE001 - a request never takes the server down
                response = JSONResponse({"error": "internal error", "expected": "", "found": type(exc).__name__},
                                        status_code=500)
        svc.metrics.request(endpoint, response.status_code, time.perf_counter() - t0)
        if response.status_code >= 400:
            svc.metrics.error(str(response.status_code))
        return response


def _status_routes(app: FastAPI, svc: Service, gate: Gate) -> None:
    """/v1/health, /v1/ready, /v1/model, /metrics."""

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        """Liveness (no token)."""
        return {"status": "ok", "ready": svc.ready}

    @app.get("/v1/ready")
    async def ready(request: Request) -> dict[str, Any]:
        """200 once the model is loaded and warm, else 503."""
        gate.authorize(request)
        gate.need_ready()
        return {"ready": True, "queue_depth": svc.batcher.depth()}

    @app.get("/v1/model")
    async def model(request: Request) -> dict[str, Any]:
        """The model card: identity, outputs, preprocessing, the predict protocol applied, accuracy figures."""
        gate.authorize(request)
        gate.need_ready()
        return svc.card

    @app.get("/metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus text format."""
        gate.authorize(request)
        return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _segment_routes(app: FastAPI, svc: Service, gate: Gate) -> None:
    """/v1/segment (one image, JSON) and /v1/segment.zip (one or more images, a ZIP)."""

    @app.post("/v1/segment", openapi_extra=_FORM_DOC, response_class=JSONResponse)
    async def segment(request: Request) -> JSONResponse:
        """One image → nuclei count, per-nucleus table, timings, model identity (?include=labels,mask,overlay)."""
        t0 = time.perf_counter()
        gate.authorize(request)
        gate.check_query(request, ("include",))
        include = parse_include(request.query_params.get("include"))
        gate.need_ready()
        files, fields = await gate.read_form(request, many=False)
        options = parse_options(fields)
        gate.admit(1)
        stem, data = files[0]
        image, record, timings = await gate.segment_one(stem, data, options)
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        body = await run_in_threadpool(svc.response, stem, image, options, record, timings, include)
        return await run_in_threadpool(JSONResponse, body)  # serialised off the event loop too

    @app.post("/v1/segment.zip", openapi_extra=_FORM_DOC, response_class=Response)
    async def segment_zip(request: Request) -> Response:
        """One or more images → ZIP: <stem>_labels.png, _mask.png, _nuclei.csv, _overlay.png, counts.csv."""
        gate.authorize(request)
        gate.check_query(request, ())
        gate.need_ready()
        files, fields = await gate.read_form(request, many=True)
        options = parse_options(fields)
        gate.admit(len(files))
        done = await asyncio.gather(*(gate.segment_one(stem, data, options) for stem, data in files),
                                    return_exceptions=True)
        for result in done:  # anything but a refusal of that one file fails the request (500, 504 ...)
            if isinstance(result, BaseException) and not (isinstance(result, RequestError)
                                                          and result.status in PER_FILE_STATUS):
                raise result
        entries = [(stem, r[0], r[1]) for (stem, _), r in zip(files, done) if not isinstance(r, BaseException)]
        failures = [{"name": stem, "status": r.status, **r.body()} for (stem, _), r in zip(files, done)
                    if isinstance(r, RequestError)]
        if not entries:  # nothing to return: the first file's refusal, with every file's
            first = next(r for r in done if isinstance(r, RequestError))
            return JSONResponse({**first.body(), "failures": failures}, status_code=first.status)
        data = await run_in_threadpool(svc.zip_bytes, entries, failures)
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="unetpp_results.zip"',
                                 "X-Unetpp-Failed": str(len(failures))})


def _page_routes(app: FastAPI, pages: dict[str, bytes]) -> None:
    """The page and its static files (a fixed set held in memory: no request path reaches the file system)."""

    @app.get("/", response_class=Response, include_in_schema=False)
    async def page() -> Response:
        return Response(pages["index.html"], media_type=STATIC["index.html"])

    @app.get("/static/{name}", response_class=Response, include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in pages:
            raise RequestError(404, "no such page file", ", ".join(STATIC), repr(name)[:100])
        return Response(pages[name], media_type=STATIC[name])
