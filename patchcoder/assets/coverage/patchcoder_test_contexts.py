# A pytest plugin that `patchcoder fix` loads into the user's test run (PYTEST_ADDOPTS="-p ..."). Under
# coverage, each test's lines are recorded under its own coverage context (its node id), and each test's
# outcome is written to PATCHCODER_FIX_OUTCOMES.<pid> as JSON, for spectrum-based fault localisation;
# with PATCHCODER_FIX_EVERY_TEST set, -x / --maxfail are ignored (every test runs, so more passing tests
# tell the lines apart). With PATCHCODER_FIX_ONLY (a file of node ids, one a line), only those tests run
# (the tests that failed before: a candidate that fails them is rejected without running the rest), and
# other test files are not collected; if none of their files exists, or none of them is collected, every
# test runs.
import json
import os

import pytest

_outcomes = {}
_stacks = {}  # node id of a failing test -> [path, 0-based line] of each frame of its traceback


def _switch(context):
    try:
        import coverage
    except ImportError:
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(context)


_wanted = set()  # the node ids of PATCHCODER_FIX_ONLY
_files = set()  # their files, when at least one exists: other test modules are not even collected


def pytest_configure(config):
    if os.environ.get("PATCHCODER_FIX_EVERY_TEST"):
        config.option.maxfail = 0
    only = os.environ.get("PATCHCODER_FIX_ONLY")
    if only:
        with open(only, encoding="utf-8") as f:
            _wanted.update(f.read().splitlines())
        files = {(config.rootpath / node.split("::")[0]).resolve() for node in _wanted}
        if any(file.is_file() for file in files):
            _files.update(files)


def pytest_ignore_collect(collection_path, config):
    if not _files or collection_path.suffix != ".py" or collection_path.name in ("conftest.py", "__init__.py"):
        return None
    if collection_path.is_file() and collection_path.resolve() not in _files:
        return True
    return None


def pytest_collection_modifyitems(session, config, items):
    if not _wanted:
        return
    chosen = [item for item in items if item.nodeid in _wanted]
    if chosen:
        config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in _wanted])
        items[:] = chosen


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _switch(item.nodeid)
    yield
    _switch("")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.excinfo is not None and call.when == "call":
        try:
            _stacks[item.nodeid] = [[str(entry.path), entry.lineno] for entry in call.excinfo.traceback]
        except Exception:  # a traceback we cannot read: no stack for this test
            pass


def pytest_runtest_logreport(report):
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.when == "call" and report.passed:
        _outcomes.setdefault(report.nodeid, "passed")


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("PATCHCODER_FIX_OUTCOMES")
    if target:
        with open(f"{target}.{os.getpid()}", "w", encoding="utf-8") as f:
            json.dump({"outcomes": _outcomes, "stacks": _stacks}, f)
