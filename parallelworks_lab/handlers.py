"""Thin Tornado handlers: parse, call the JobService, map domain errors to HTTP answers."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from .errors import InvalidRequest, PWLabError, ServiceUnavailable
from .guidance.templates import TemplateIn, TemplateList
from .models import JobSubmit
from .openapi import openapi_spec
from .service import JobService

BASE = "parallelworks-lab"
# Any path segment is routed; the service answers 404 (JSON) for ids it does not know.
CLUSTER_ID = "(?P<cluster_id>[^/]+)"
TEMPLATE_NAME = "(?P<name>[^/]+)"
ModelT = TypeVar("ModelT", bound=BaseModel)
JOB_ID = "(?P<job_id>[^/]+)"
# Query integers: plain decimal digits (int() would also take "1_000" or " 5 "). Nothing we
# accept needs more digits than this, and a longer number is refused before int() sees it.
INTEGER = re.compile(r"[+-]?[0-9]+")
MAX_INT_DIGITS = 20


class BaseHandler(ExtensionHandlerMixin, APIHandler):
    @property
    def service(self) -> JobService:
        service: JobService = self.settings["parallelworks_lab_service"]
        return service

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        unavailable = self.settings.get("parallelworks_lab_unavailable")
        if unavailable:
            raise ServiceUnavailable(unavailable)
        # pytest-jupyter and some launchers never run the extension's async start hook.
        await self.service.start()

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        # How long the server spent on the request (browser devtools and benchmarks read it).
        self.set_header("Server-Timing", f"app;dur={self.request.request_time() * 1000:.2f}")
        self.finish(model.model_dump_json())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = exc_info[1] if exc_info else None
        self.set_header("Content-Type", "application/json")
        if isinstance(exc, PWLabError):
            self.finish(json.dumps(exc.as_dict()))
            return
        message = self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.finish(json.dumps({"message": message, "errors": []}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, PWLabError):
            # A user error or an unreachable cluster: expected, no traceback.
            if value.status >= 500:
                self.log.warning("%s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info and isinstance(exc_info[1], PWLabError):
            status_code = exc_info[1].status
        super().send_error(status_code, **kwargs)

    def json_body(self) -> Any:
        """The request body as JSON; any body that is not becomes a 400 on ``body``, never a 500."""
        raw = self.request.body or b"null"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest.for_field(
                "body", f"is not UTF-8 text (byte {exc.start}): send JSON encoded as UTF-8"
            ) from None
        try:
            return json.loads(text)
        except RecursionError:
            # json's decoder recurses once per nesting level; no request of ours is deep.
            raise InvalidRequest.for_field("body", "is nested too deeply") from None
        except ValueError as exc:
            # JSONDecodeError, and ints longer than Python converts (sys.get_int_max_str_digits).
            raise InvalidRequest.for_field("body", f"is not valid JSON: {exc}") from None

    def body_as(self, model: type[ModelT]) -> ModelT:
        """The JSON body validated into ``model`` (400 naming each bad field)."""
        body = self.json_body()
        if not isinstance(body, dict):
            raise InvalidRequest.for_field("body", "must be a JSON object")
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest.from_validation(exc) from None

    def int_argument(self, name: str, default: int) -> int:
        """An integer query parameter; its range is the service's to check."""
        value = self.get_argument(name, None)
        if value is None or value == "":
            return default
        if not INTEGER.fullmatch(value):
            raise InvalidRequest.for_field(name, f"'{value[:40]}' is not an integer")
        if len(value.lstrip("+-")) > MAX_INT_DIGITS:
            raise InvalidRequest.for_field(name, "is out of range")
        return int(value)


class ClustersHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        self.finish({"clusters": [c.model_dump(mode="json") for c in self.service.list_clusters()]})


class ClusterHandler(BaseHandler):
    @web.authenticated
    async def get(self, cluster_id: str) -> None:
        self.write_model(await self.service.cluster_detail(cluster_id))


class ClusterStartHandler(BaseHandler):
    @web.authenticated
    async def post(self, cluster_id: str) -> None:
        self.write_model(await self.service.start_cluster(cluster_id), status=202)


class JobsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        states: list[str] = []
        for value in self.get_arguments("state"):
            states.extend(s for s in value.split(",") if s)
        result = self.service.list_jobs(
            cluster=self.get_argument("cluster", None) or None,
            states=states,
            limit=self.int_argument("limit", 100),
            cursor=self.get_argument("cursor", None),
        )
        self.write_model(result)

    @web.authenticated
    async def post(self) -> None:
        request = self.body_as(JobSubmit)
        job = await self.service.submit(request)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + job.id)
        self.write_model(job, status=201)


class JobHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        self.write_model(await self.service.job_detail(job_id))

    @web.authenticated
    async def delete(self, job_id: str) -> None:
        self.write_model(await self.service.cancel(job_id))


class JobActionHandler(BaseHandler):
    @web.authenticated
    async def post(self, job_id: str, action: str) -> None:
        if action == "hold":
            job = await self.service.hold(job_id)
        else:
            job = await self.service.release(job_id)
        self.write_model(job)


class JobSubmissionHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        self.write_model(self.service.get_submission(job_id))


class JobLogsHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        chunk = await self.service.read_log(
            job_id,
            stream=self.get_argument("stream", "stdout"),
            offset=self.int_argument("offset", 0),
        )
        self.write_model(chunk)


class SuggestionsHandler(BaseHandler):
    @web.authenticated
    async def post(self) -> None:
        self.write_model(self.service.suggest(self.body_as(JobSubmit)))


class TemplatesHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        self.write_model(TemplateList(templates=self.service.list_templates()))

    @web.authenticated
    async def post(self) -> None:
        self.write_model(await self.service.save_template(self.body_as(TemplateIn)), status=201)


class TemplateHandler(BaseHandler):
    @web.authenticated
    async def delete(self, name: str) -> None:
        self.service.delete_template(name)
        self.set_status(204)
        self.finish()


class OpenAPIHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        self.finish(openapi_spec(base_url=self.base_url))


def route(path: str) -> str:
    return f"/{BASE}/{path}" if path else f"/{BASE}"


HANDLERS: list[tuple[str, type[BaseHandler]]] = [
    (route("clusters/?"), ClustersHandler),
    (route(f"clusters/{CLUSTER_ID}/?"), ClusterHandler),
    (route(f"clusters/{CLUSTER_ID}/start/?"), ClusterStartHandler),
    (route("jobs/?"), JobsHandler),
    (route(f"jobs/{JOB_ID}/?"), JobHandler),
    (route(f"jobs/{JOB_ID}/(?P<action>hold|release)/?"), JobActionHandler),
    (route(f"jobs/{JOB_ID}/logs/?"), JobLogsHandler),
    (route(f"jobs/{JOB_ID}/submission/?"), JobSubmissionHandler),
    (route("suggestions/?"), SuggestionsHandler),
    (route("templates/?"), TemplatesHandler),
    (route(f"templates/{TEMPLATE_NAME}/?"), TemplateHandler),
    (route("openapi.json"), OpenAPIHandler),
]
