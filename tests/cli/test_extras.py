"""The core installs without the center's extra: the rules, the wrapper, the scanner, the
probes and report drafting work without FastAPI, SQLAlchemy, matplotlib or WeasyPrint, and
a center command says what to install.

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
NEEDS_CENTER = (
    "todokede: error: this command needs the center's dependencies: "
    "pip install 'todokede[center]'\n"
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


def blocked(*args: str, stdin: str = "", token: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, ",".join(CENTER), *args],
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


def test_scan_then_draft_without_the_center() -> None:
    scan = blocked("scan", "--json", str(IMAP_LOG))
    assert scan.returncode == 0, scan.stderr
    assert {json.loads(line)["kind"] for line in scan.stdout.splitlines()} == {"access-probe"}
    draft = blocked("report", "draft", "--from-scan", "-", "--lang", "en", stdin=scan.stdout)
    assert draft.returncode == 0, draft.stderr
    assert json.loads(draft.stdout)["methods"] == ["access_probe"]


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
    result = blocked("report", "submit", str(report), "--center", "http://127.0.0.1:9", token="t")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == NEEDS_CENTER


def test_other_missing_modules_are_not_blamed_on_the_extra() -> None:
    # A broken import of anything else is a bug, shown as one, not an install hint.
    from todokede.cli import missing_extra

    assert missing_extra(ModuleNotFoundError("x", name="sqlalchemy.orm")) is not None
    assert missing_extra(ModuleNotFoundError("x", name="todokede.nothing")) is None
    assert missing_extra(ModuleNotFoundError("x")) is None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_center_dependency_is_known_to_the_command_line() -> None:
    # A library added to the extra must be one the command line turns into the install hint.
    from todokede.cli import CENTER_MODULES

    with (ROOT / "pyproject.toml").open("rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"]["center"]
    provided = importlib.metadata.packages_distributions()
    for requirement in extra:
        m = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert m, requirement
        modules = {
            module
            for module, dists in provided.items()
            if _normal(m.group()) in {_normal(d) for d in dists}
        }
        assert modules & CENTER_MODULES, (requirement, sorted(modules))


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
            *CENTER,
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
