"""A secret written inline in the configuration is printed by `jupyter lab --debug` (Jupyter's
own config dump): say so once at start-up, without the secret, and point to the file options."""

from __future__ import annotations

import base64
import logging

import pytest

from parallelworks_lab.service import JobService

from .support.service import build_service

TOKEN = "eyJhbGciOi.inline-secret-token.sig"
KEY = "pwt_" + base64.urlsafe_b64encode(b"platform.example").decode().rstrip("=") + ".sekrit"


def service_with(tmp_path, entry) -> JobService:
    return build_service(tmp_path, [entry])


@pytest.mark.parametrize(
    ("entry", "secret", "setting", "advice"),
    [
        (
            {
                "id": "rest",
                "kind": "slurmrest",
                "url": "http://slurm.example",
                "user": "alice",
                "token": {"value": TOKEN},
            },
            TOKEN,
            "token.value",
            "token.file",
        ),
        ({"id": "pw", "kind": "activate", "api_key": KEY}, KEY, "api_key", "api_key_file"),
    ],
    ids=["slurmrest-token", "activate-api-key"],
)
def test_inline_secret_is_warned_about_once_without_the_secret(
    tmp_path, caplog, entry, secret, setting, advice
):
    caplog.set_level(logging.DEBUG)
    service_with(tmp_path, entry)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    message = warnings[0].getMessage()
    assert setting in message and advice in message and "--debug" in message
    assert all(secret not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "entry",
    [
        {
            "id": "rest",
            "kind": "slurmrest",
            "url": "http://slurm.example",
            "user": "alice",
            "token": {"file": "/nonexistent/token"},
        },
        {"id": "pw", "kind": "activate", "api_key_file": "/nonexistent/key"},
    ],
    ids=["slurmrest-token-file", "activate-api-key-file"],
)
def test_secrets_from_files_are_not_warned_about(tmp_path, caplog, entry):
    caplog.set_level(logging.DEBUG)
    service_with(tmp_path, entry)
    assert not [r for r in caplog.records if "inline" in r.getMessage()]
