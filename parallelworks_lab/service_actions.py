"""What changes jobs: submit (checked against the cluster's partitions and limits, written to
the store before the scheduler is called; see docs/design.md, "Submit protocol"), cancel, hold
and release, and what helps a submission: suggestions from earlier runs and job templates."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable

from .backends.base import SubmitRequest, storable_answer
from .clusters import Cluster
from .errors import (
    ClusterUnreachable,
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
    PWLabError,
    RateLimited,
)
from .guidance import provenance
from .guidance.models import Provenance, Suggestion
from .guidance.suggest import RUNS_LOOKED_AT, suggest
from .guidance.templates import Template, TemplateIn, TemplateStore
from .limits import check_limits, pick_partition
from .models import Job, JobSubmit, Partition, ResourceRequest
from .poller import Poller
from .privacy import redact_env
from .service_views import JobViews
from .states import JobState


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def script_hash(request: JobSubmit) -> str:
    """What identifies "the same script" across submissions (for resource suggestions)."""
    return hashlib.sha256(request.batch_script().encode("utf-8", "surrogatepass")).hexdigest()[:32]


class JobActions(JobViews):
    """The write side of :class:`~.service.JobService` (which sets these attributes up)."""

    log: logging.Logger
    pollers: dict[str, Poller]
    templates: TemplateStore
    _submitting: set[str]
    _job_changed: Callable[[Job], None]

    async def submit(self, request: JobSubmit) -> Job:
        if request.cluster not in self.clusters:
            known = ", ".join(self.clusters)
            raise InvalidRequest.for_field(
                "cluster", f"unknown cluster '{request.cluster}'; configured: {known}"
            )
        cluster = self.clusters[request.cluster]
        backend = cluster.backend
        resources = request.resources
        partition, errors = await self.check_resources(cluster, resources)
        errors += backend.check_working_dir(request.working_dir)
        if request.name is not None and (problem := backend.check_name(request.name)):
            errors.append(FieldError("name", problem))
        after_native: list[str] = []
        for dep_id in request.after:
            dep = self.store.get(dep_id)
            if dep is None:
                errors.append(FieldError("after", f"unknown job '{dep_id}'"))
            elif dep.cluster != cluster.id:
                errors.append(FieldError("after", f"job '{dep_id}' is on another cluster"))
            elif dep.native_id is None:
                errors.append(FieldError("after", f"job '{dep_id}' has not reached the scheduler"))
            else:
                after_native.append(dep.native_id)
        for var in request.redacted_env:
            if request.env.get(var) == "":
                errors.append(
                    FieldError(
                        f"env.{var}",
                        "re-enter its value: secret values are not kept after a job is submitted",
                    )
                )
        if errors:
            raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)

        name = request.name or self._default_name(request)
        resources = resources.model_copy(update={"partition": partition.name})
        job_id = new_job_id()
        token = uuid.uuid4().hex
        inserted = self.store.insert(
            job_id=job_id,
            cluster=cluster.id,
            name=name,
            resources=resources,
            submit_token=token,
            # Secret-named env values go to the scheduler only, never into the store.
            request=request.model_dump(mode="json", exclude={"redacted_env"})
            | {"env": redact_env(request.env)},
            working_dir=request.working_dir,
            provenance=self._provenance(cluster, request),
            script_hash=script_hash(request),
        )
        self._submitting.add(job_id)
        try:
            result = await backend.submit(
                SubmitRequest(
                    job_id=job_id,
                    submit_token=token,
                    name=name,
                    script=request.batch_script(),
                    resources=resources,
                    working_dir=request.working_dir,
                    env=request.env,
                    after_native_ids=after_native,
                )
            )
        except (InvalidRequest, RateLimited):
            # The scheduler refused it (bad request, or too many calls): nothing was queued.
            self.store.delete(job_id)
            raise
        except Exception as exc:
            # It may or may not have reached the scheduler: keep it SUBMITTING, the poller
            # looks the token up when the cluster answers again.
            self.log.warning("submit of %s to %s failed: %s", job_id, cluster.id, exc)
            if isinstance(exc, PWLabError):
                raise
            raise ClusterUnreachable(cluster.id, str(exc)) from exc
        finally:
            self._submitting.discard(job_id)
        result = storable_answer(result)
        # The row as inserted is the current one (the poller leaves a job alone while its
        # submit is in flight), so the answer is built from what is written, not read again.
        # The write itself comes right after the answer: the row already holds the token, by
        # which a restart finds this job on the scheduler should the server die before.
        job = self.store.update_soon(
            inserted,
            native_id=result.native_id,
            state=result.state,
            raw_state=result.raw_state,
            reason=result.reason,
            working_dir=result.working_dir,
            stdout_path=result.stdout_path,
            stderr_path=result.stderr_path,
        )
        self._job_changed(job)
        return job

    async def check_resources(
        self, cluster: Cluster, resources: ResourceRequest
    ) -> tuple[Partition, list[FieldError]]:
        """The partition a request goes to, and what is wrong with the request there."""
        backend = cluster.backend
        errors: list[FieldError] = []
        for field_name in sorted(backend.unsupported_fields):
            if getattr(resources, field_name) != type(resources).model_fields[field_name].default:
                errors.append(
                    FieldError(
                        f"resources.{field_name}",
                        f"is not supported on cluster '{cluster.id}' ({cluster.config.kind})",
                    )
                )
        partition = pick_partition(resources, await cluster.partitions())
        errors += check_limits(resources, partition)
        errors += backend.check_resources(resources, partition)
        return partition, errors

    def _provenance(self, cluster: Cluster, request: JobSubmit) -> Provenance:
        backend = cluster.backend
        source = request.source
        return provenance.collect(
            notebook_path=source.notebook_path if source else None,
            cell_id=source.cell_id if source else None,
            working_dir=backend.local_path(request.working_dir),
            user=backend.submitting_user,
            modules=backend.local_path(None) is not None,
        )

    @staticmethod
    def _default_name(request: JobSubmit) -> str:
        if request.command:
            first = request.command.strip().split()[0]
            return first.rsplit("/", 1)[-1][:64] or "command"
        return "script"

    def suggest(self, request: JobSubmit) -> Suggestion:
        """What earlier runs of the same script (else the same job name) really used."""
        if request.cluster not in self.clusters:
            raise InvalidRequest.for_field("cluster", f"unknown cluster '{request.cluster}'")
        runs, matched_by = self.store.history(
            request.cluster,
            script_hash=script_hash(request),
            name=request.name,
            limit=RUNS_LOOKED_AT,
        )
        return suggest(runs, matched_by, request.resources)

    def list_templates(self) -> list[Template]:
        return self.templates.list()

    async def save_template(self, template: TemplateIn) -> Template:
        """Save a user template, checked like a submission where it names a cluster."""
        existing = self.templates.get(template.name)
        if existing is not None and existing.read_only:
            raise Conflict(
                f"'{template.name}' is a site template and cannot be changed; "
                "save yours under another name"
            )
        if template.script is not None and template.command is not None:
            raise InvalidRequest.for_field("script", "give at most one of 'script' or 'command'")
        if template.cluster is not None:
            if template.cluster not in self.clusters:
                raise InvalidRequest.for_field("cluster", f"unknown cluster '{template.cluster}'")
            _, errors = await self.check_resources(
                self.clusters[template.cluster], template.resources
            )
            if errors:
                raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
        return self.templates.save(template)

    def delete_template(self, name: str) -> None:
        existing = self.templates.get(name)
        if existing is None:
            raise NotFound(f"unknown template '{name}'")
        if existing.read_only:
            raise Conflict(f"'{name}' is a site template; only its administrator can remove it")
        self.templates.delete(name)

    async def _control(self, job_id: str, action: str) -> Job:
        job = self.get_job(job_id)
        if job.terminal:
            raise Conflict(f"job '{job_id}' has already ended ({job.state.value}); cannot {action}")
        if job.native_id is None:
            raise Conflict(f"job '{job_id}' is still being submitted; try again in a moment")
        if action == "hold" and job.state is not JobState.QUEUED:
            raise Conflict(f"job '{job_id}' is {job.state.value}; only QUEUED jobs can be held")
        if action == "release" and job.state is not JobState.HELD:
            raise Conflict(f"job '{job_id}' is {job.state.value}; only HELD jobs can be released")
        cluster = self.cluster(job.cluster)
        operation = getattr(cluster.backend, action)
        try:
            await operation(job.native_id)
        except PWLabError:
            raise
        except OSError as exc:
            raise ClusterUnreachable(cluster.id, str(exc)) from exc
        await self.pollers[cluster.id].refresh([job])
        return self.get_job(job_id)

    async def cancel(self, job_id: str) -> Job:
        return await self._control(job_id, "cancel")

    async def hold(self, job_id: str) -> Job:
        return await self._control(job_id, "hold")

    async def release(self, job_id: str) -> Job:
        return await self._control(job_id, "release")
