"""The core installs without the extras: the rules, the wrapper, the scanner, the probes and
guard work with click and rich only (no FastAPI, SQLAlchemy, matplotlib, WeasyPrint, nor
pydantic); report drafting needs the ``report`` extra, the center's commands the ``center``
one, and each says what to install.

The fast tests run the command line in a subprocess whose imports of the center's
libraries fail, as in a core install; the slow one builds a fresh venv with
``pip install .`` (no extra)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "todokede" / "samples"
IMAP_LOG = SAMPLES / "logs" / "1997-09" / "site-imap" / "messages"
RULES = SAMPLES / "access"

# Import names of the center extra's libraries (and what they bring in).
CENTER = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "matplotlib",
    "weasyprint",
    "psycopg",
    "lxml",
    "stix2",
    "jinja2",
    "argon2",
    "fastapi_offline",
    "multipart",
)
# ... and of the report extra: the core has neither.
REPORT = ("pydantic", "pydantic_core")
CORE_BLOCKED = (*CENTER, *REPORT)
NEEDS_CENTER = (
    "todokede: error: this command needs the center's dependencies: "
    "pip install 'todokede[center]'\n"
)
NEEDS_REPORT = (
    "todokede: error: this command needs report drafting (pydantic): "
    "pip install 'todokede[report]'\n"
)

# Runs `todokede ARGS...` with the center's libraries made unimportable.
BLOCKED_CLI = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set(sys.argv[1].split(","))

class Blocker(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
sys.argv = ["todokede", *sys.argv[2:]]
from todokede.cli import main
main()
"""


def blocked(
    *args: str, stdin: str = "", token: str = "", modules: tuple[str, ...] = CORE_BLOCKED
) -> subprocess.CompletedProcess[str]:
    """``todokede ARGS...`` as in a core install (or with only ``modules`` missing)."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, ",".join(modules), *args],
        input=stdin,
        env={**os.environ, "TODOKEDE_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--help"], "serve"),
        (["access", "match", "--rules-dir", str(RULES), "imapd", "192.0.2.23"], "access:   denied"),
        (["access", "check", "--rules-dir", str(RULES)], "0 error(s)"),
        (["scan", str(IMAP_LOG)], "access-probe"),
        (["probe", "--help"], "Example"),
        (["probe", "relay", "--help"], "Example"),
        (["wrap", "--help"], "Example"),
        (["guard", "--help"], "Example"),
        (["guard", "status", "--help"], "Example"),
        (["report", "--help"], "Example"),
        (["serve", "--help"], "Example"),
        (["monthly", "--help"], "Example"),
    ],
)
def test_core_commands_run_without_the_center(args: list[str], expect: str) -> None:
    result = blocked(*args)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout + result.stderr
    assert "blocked" not in result.stderr


def test_scan_then_draft_with_the_report_extra_only() -> None:
    scan = blocked("scan", "--json", str(IMAP_LOG))
    assert scan.returncode == 0, scan.stderr
    assert {json.loads(line)["kind"] for line in scan.stdout.splitlines()} == {"access-probe"}
    args = ("report", "draft", "--from-scan", "-", "--lang", "en")
    draft = blocked(*args, stdin=scan.stdout, modules=CENTER)
    assert draft.returncode == 0, draft.stderr
    assert json.loads(draft.stdout)["methods"] == ["access_probe"]
    core = blocked(*args, stdin=scan.stdout)
    assert (core.returncode, core.stderr, core.stdout) == (2, NEEDS_REPORT, "")


GUARD_CONF = """\
[guard]
state = "{tmp}/guard.db"
hosts_deny = "{tmp}/guard.deny"
report_dir = "{tmp}/reports"

[jail.imap]
logpath = "{log}"
filters = ["imapd"]
ignoreip = ["127.0.0.1"]
{report}
"""


@pytest.mark.parametrize("report", ["", 'report = "draft"'])
def test_guard_in_a_core_install(tmp_path: Path, report: str) -> None:
    """guard runs with click and rich only; a jail that drafts reports says what to install
    when guard starts, before anything is read or applied."""
    conf = tmp_path / "guard.toml"
    conf.write_text(GUARD_CONF.format(tmp=tmp_path, log=IMAP_LOG, report=report))
    status = blocked("guard", "--config", str(conf), "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["jails"]["imap"]["banned"] == 0
    if report:
        run = blocked("guard", "--config", str(conf))
        assert run.returncode == 2, run.stdout + run.stderr
        assert run.stderr.endswith(NEEDS_REPORT)
        assert not (tmp_path / "guard.deny").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--db", "{tmp}/c.db"],
        ["user", "add", "alice", "--role", "reporter", "--db", "{tmp}/c.db"],
        ["user", "list", "--db", "{tmp}/c.db"],
        ["monthly", "1997-09", "--db", "{tmp}/c.db", "-o", "{tmp}/m.html"],
        ["export", "--format", "csv", "--db", "{tmp}/c.db", "-o", "{tmp}/e.csv"],
        ["demo", "--dir", "{tmp}/demo"],
        ["center", "ingest-mail", "-", "--db", "{tmp}/c.db"],
    ],
)
def test_center_commands_say_what_to_install(args: list[str], tmp_path: Path) -> None:
    result = blocked(*(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == NEEDS_CENTER
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_iodef_input_without_the_center_says_what_to_install(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text('<?xml version="1.0"?><IODEF-Document/>', encoding="utf-8")
    args = ("report", "submit", str(report), "--center", "http://127.0.0.1:9")
    result = blocked(*args, token="t", modules=CENTER)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == NEEDS_CENTER


def test_other_missing_modules_are_not_blamed_on_the_extra() -> None:
    # A broken import of anything else is a bug, shown as one, not an install hint.
    from todokede.cli import missing_extra

    assert missing_extra(ModuleNotFoundError("x", name="sqlalchemy.orm")) is not None
    found = missing_extra(ModuleNotFoundError("x", name="pydantic"))
    assert found is not None and found.extra == "report"
    found = missing_extra(ModuleNotFoundError("x", name="pydantic"), "monthly")
    assert found is not None and found.extra == "center"  # the center's extra brings it too
    assert missing_extra(ModuleNotFoundError("x", name="todokede.nothing")) is None
    assert missing_extra(ModuleNotFoundError("x")) is None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("extra", ["center", "report"])
def test_every_extra_dependency_is_known_to_the_command_line(extra: str) -> None:
    # A library added to an extra must be one the command line turns into the install hint.
    from todokede.cli import CENTER_MODULES
    from todokede.errors import REPORT_MODULES

    known = CENTER_MODULES if extra == "center" else REPORT_MODULES
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    assert project["dependencies"] == ["click>=8.1", "rich>=13"]  # the core: nothing more
    provided = importlib.metadata.packages_distributions()
    for requirement in project["optional-dependencies"][extra]:
        m = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert m, requirement
        if m.group() == "todokede":
            continue  # another extra of ours (center includes report)
        modules = {
            module
            for module, dists in provided.items()
            if _normal(m.group()) in {_normal(d) for d in dists}
        }
        assert modules & known, (requirement, sorted(modules))


# --- a real core install --------------------------------------------------------------------

UNREACHABLE = re.compile(
    r"No matching distribution found|Could not find a version|NewConnectionError|"
    r"Failed to establish a new connection|Temporary failure in name resolution|"
    r"Network is unreachable|ConnectTimeout|ReadTimeout"
)


def core_venv(tmp_path: Path) -> Path:
    """A fresh venv with ``pip install .`` (no extra) of a copy of this tree."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "*.so"
        ),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if pip.returncode != 0 and UNREACHABLE.search(pip.stderr):
        pytest.skip(f"package index unreachable: {UNREACHABLE.search(pip.stderr)}")
    assert pip.returncode == 0, pip.stderr
    return env_dir / "bin"


@pytest.mark.slow
@pytest.mark.index
def test_a_core_install_has_no_center(tmp_path: Path) -> None:
    bin_dir = core_venv(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "todokede"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    found = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.util as u, sys; "
            "print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))",
            *CORE_BLOCKED,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert found.returncode == 0 and found.stdout.strip() == "", found.stdout + found.stderr
    match = run("access", "match", "--rules-dir", str(RULES), "imapd", "192.0.2.23")
    assert match.returncode == 0 and "access:   denied" in match.stdout, match.stderr
    scan = run("scan", "--json", str(IMAP_LOG))
    assert scan.returncode == 0 and '"access-probe"' in scan.stdout, scan.stderr
    for command in ("probe", "wrap"):
        assert run(command, "--help").returncode == 0
    serve = run("serve", "--db", str(tmp_path / "c.db"))
    assert (serve.returncode, serve.stderr) == (2, NEEDS_CENTER)
    draft = run("report", "draft", "--from-scan", "-")
    assert (draft.returncode, draft.stderr) == (2, NEEDS_REPORT)
