# A pytest plugin that `patchcoder fix` loads into the user's test run (PYTEST_ADDOPTS="-p ..."): each
# test's lines are recorded under its own coverage context (its node id), and each test's outcome is
# written to PATCHCODER_FIX_OUTCOMES.<pid> as JSON, for spectrum-based fault localisation.
import json
import os

import pytest

_outcomes = {}


def _switch(context):
    try:
        import coverage
    except ImportError:
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(context)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _switch(item.nodeid)
    yield
    _switch("")


def pytest_runtest_logreport(report):
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.when == "call" and report.passed:
        _outcomes.setdefault(report.nodeid, "passed")


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("PATCHCODER_FIX_OUTCOMES")
    if target:
        with open(f"{target}.{os.getpid()}", "w", encoding="utf-8") as f:
            json.dump(_outcomes, f)
