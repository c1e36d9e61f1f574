"""Domain errors. Handlers turn them into HTTP answers; the service never imports Tornado."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class PWLabError(Exception):
    message: str
    errors: list[FieldError] = field(default_factory=list)
    status: int = 500

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, object]:
        return {"message": self.message, "errors": [e.as_dict() for e in self.errors]}


class InvalidRequest(PWLabError):
    """Bad input (400). ``errors`` names each offending field."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message, errors or [], 400)

    @classmethod
    def for_field(cls, field_path: str, message: str) -> InvalidRequest:
        return cls(f"{field_path}: {message}", [FieldError(field_path, message)])

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> InvalidRequest:
        errors = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]) or "body"
            if prefix:
                path = f"{prefix}.{path}" if path != "body" else prefix
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            errors.append(FieldError(path, msg))
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return cls(f"Invalid request: {summary}", errors)


class NotFound(PWLabError):
    def __init__(self, message: str) -> None:
        super().__init__(message, [], 404)


class Conflict(PWLabError):
    """The job is in a state where the action makes no sense (409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 409)


class ClusterUnreachable(PWLabError):
    #: The cluster status this error puts the cluster in.
    cluster_status = "unreachable"

    def __init__(self, cluster: str, detail: str) -> None:
        super().__init__(f"Cluster '{cluster}' is unreachable: {detail}", [], 503)


class RateLimited(ClusterUnreachable):
    """The scheduler refuses calls because this user made too many (Slurm 23.02+ ``rl_enable``):
    nothing is wrong with the job or the cluster; slow down and ask again (429)."""

    cluster_status = "rate_limited"

    def __init__(self, cluster: str, detail: str) -> None:
        super().__init__(cluster, detail)
        self.message = (
            f"The scheduler of cluster '{cluster}' is rate-limiting you (too many requests in a "
            f"short time: {detail}). parallelworks-lab slows down and asks again; nothing is "
            "lost. Try again in a minute."
        )
        self.status = 429


class CredentialsRejected(ClusterUnreachable):
    """The cluster answers but refuses our credentials (a token, an API key): a person must act."""

    cluster_status = "auth_rejected"


class ServiceUnavailable(PWLabError):
    """The extension cannot serve at all (e.g. a job database from a newer version): 503."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [], 503)
