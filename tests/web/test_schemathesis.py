"""schemathesis over the controller's own OpenAPI schema, against the real app served by
uvicorn (real SQLite, real broker), as each role: no response is a 5xx, and every
documented response matches its schema.

Bounded in time: ``LOAXA_FUZZ_EXAMPLES`` cases per operation and role (default 6), in
the generation phase only, valid and invalid data both; the whole run takes about two
minutes on two cores. Set the variable higher for a longer hunt.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

EXAMPLES = int(os.environ.get("LOAXA_FUZZ_EXAMPLES", "6"))
ROLES = ("staff", "leader", "officer", "admin")
SKIP = {("GET", "/api/alerts/stream")}
"""A long-lived Server-Sent Events stream (up to an hour by design): not a request and a
response; the role matrix and the alert-desk tests cover it."""
ENDS_SESSION = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password")}


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(controller_settings):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
    )

    from controller.security import Role
    from controller.services import users
    from tests.web.conftest import serve

    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    # engine "auto" would try Google TTS: the fuzz stays offline like the other tests
    fuzz_settings = controller_settings.model_copy(update={"login_attempts": 10_000})
    with serve(fuzz_settings) as base:
        from tests.web.conftest import serve as served

        app = served.app  # type: ignore[attr-defined]
        runtime = app.state.runtime
        with runtime.db.session() as s:
            for role in ROLES[:-1]:
                users.create_user(s, role, f"{role}-password-123", Role(role))

        def token_of(role: str) -> str:
            with runtime.db.session() as s:
                return users.sign_in(s, users.get_user(s, role), runtime.secret_key,
                                     timedelta(hours=1))

        tokens = {role: token_of(role) for role in ROLES}
        schema = schemathesis.openapi.from_dict(app.openapi())
        http = requests.Session()
        statuses: Counter[int] = Counter()
        failures: dict[str, str] = {}
        tried = 0
        started = time.monotonic()

        def fuzz_one(strategy: Any, role: str, key: tuple[str, str]) -> Any:
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: Any) -> None:
                nonlocal tried
                tried += 1
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                response = case.call(base_url=base, session=http, headers=headers, timeout=30)
                statuses[response.status_code] += 1
                if key in ENDS_SESSION:
                    tokens[role] = token_of(role)
                try:
                    case.validate_response(response, checks=checks)
                except (Exception, BaseExceptionGroup) as exc:  # one entry per problem
                    label = f"{key[0]} {key[1]} as {role}: {type(exc).__name__}"
                    failures.setdefault(label, str(exc)[:600])

            return run

        operations = [r.ok() for r in schema.get_all_operations()]
        for operation in operations:
            key = (operation.method.upper(), operation.path)
            if key in SKIP:
                continue
            for role in ROLES:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    strategy = operation.as_strategy(generation_mode=mode)

                    run = fuzz_one(strategy, role, key)
                    with contextlib.suppress(Unsatisfiable):
                        run()
        elapsed = time.monotonic() - started
    print(f"\nschemathesis: {tried} cases over {len(operations) - len(SKIP)} operations × "
          f"{len(ROLES)} roles in {elapsed:.0f} s; statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert tried >= len(operations) * len(ROLES)
    assert not any(code >= 500 for code in statuses)
