"""What the command line prints where, as cron and a terminal see it: problems on stderr, the
summary on stdout, ``-q`` silent when all went well, progress only on a terminal, options after
the command, ``-V``, shell completion, and errors that name the file meant and the fix."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

from tests.conftest import LocalServer, Reply

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"
PAGES = SAMPLES / "text-pages"
SUBSCRIBERS = (
    '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["tensor"]\n'
    '[[subscribers]]\nemail = "grace@example.org"\nkeywords = ["embedding"]\n'
)


def digest(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env={**clean, **(env or {})},
    )  # fmt: skip


def write_config(folder: Path, sources: str) -> Path:
    shutil.copytree(PAGES, folder / "pages", dirs_exist_ok=True)
    path = folder / "digest.toml"
    path.write_text(
        sources + '[delivery]\nmethod = "file"\noutbox = "outbox"\n' + SUBSCRIBERS,
        encoding="utf-8",
    )
    return path


GOOD = '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
MISSING = '[[sources]]\nkind = "page"\npath = "nowhere/*.txt"\n'


def test_a_failing_source_is_on_stderr_when_stdout_goes_to_dev_null(tmp_path: Path) -> None:
    write_config(tmp_path, MISSING + GOOD)
    done = digest("run", cwd=tmp_path)
    assert done.returncode == 1
    assert "nowhere/*.txt" in done.stderr and "source failed" in done.stderr
    assert done.stderr.startswith("digest: source failed: nowhere/*.txt")  # what cron mails
    assert "sent 2 of 2 digests" in done.stdout  # the summary, for whoever reads stdout


def test_quiet_prints_nothing_on_stdout_when_all_went_well(tmp_path: Path) -> None:
    write_config(tmp_path, GOOD)
    done = digest("run", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2  # and it did its work


def test_quiet_still_prints_the_problems(tmp_path: Path) -> None:
    write_config(tmp_path, MISSING + GOOD)
    done = digest("-q", "run", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "nowhere/*.txt" in done.stderr


def test_fetch_of_an_api_sample_prints_real_dates(tmp_path: Path) -> None:
    done = digest("fetch", "--source", str(SAMPLES / "hf" / "api_2025-03-24.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert rows and "<10" not in done.stdout
    assert all(re.match(r"\S+\s+2025-03-\d\d\s+\d+\s", row) for row in rows), rows[:3]


def test_global_options_work_after_the_command_and_version(tmp_path: Path) -> None:
    config = write_config(tmp_path, GOOD)
    verbose = digest("run", "-v", "--dry-run", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert "ada@example.org" in verbose.stdout
    checked = digest("check", "--config", str(config), cwd=tmp_path.parent)
    assert checked.returncode == 0, checked.stderr
    version = digest("-V", cwd=tmp_path)
    assert version.returncode == 0 and re.fullmatch(
        r"paper-digest \d+\.\d+\.\d+\S*\n", version.stdout
    )
    bare = digest(cwd=tmp_path)
    assert bare.returncode == 0 and bare.stdout.startswith("usage: digest")


def test_shell_completion_is_generated_from_the_parser(tmp_path: Path) -> None:
    for shell in ("bash", "zsh"):
        done = digest("--print-completion", shell, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert all(command in done.stdout for command in ("preview", "subscribers", "--dry-run"))
    bash = shutil.which("bash")
    if bash is None:
        return
    script = tmp_path / "digest.bash"
    script.write_text(digest("--print-completion", "bash", cwd=tmp_path).stdout)
    # what bash offers after `digest se<TAB>`
    offered = subprocess.run(
        [bash, "-c", f'source "{script}"; COMP_WORDS=(digest se); COMP_CWORD=1; '
         '_shtab_digest; echo "${COMPREPLY[@]}"'],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    assert offered == ["seen", "serve"]


def test_an_unknown_subscriber_gets_the_nearest_address(tmp_path: Path) -> None:
    write_config(tmp_path, GOOD)
    done = digest("preview", "--subscriber", "ada@exmaple.org", cwd=tmp_path)
    assert done.returncode == 2
    assert "no subscriber 'ada@exmaple.org'" in done.stderr
    assert "did you mean ada@example.org" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_relative_digest_config_is_named_in_full_with_the_right_hint(tmp_path: Path) -> None:
    done = digest("check", cwd=tmp_path, env={"DIGEST_CONFIG": "conf/missing.toml"})
    assert done.returncode == 2
    assert f"{tmp_path / 'conf' / 'missing.toml'}: no such config file" in done.stderr
    assert "$DIGEST_CONFIG names it" in done.stderr
    explicit = digest("check", "--config", "other.toml", cwd=tmp_path)
    assert "check the --config path" in explicit.stderr


def test_config_errors_point_to_init_print(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("[digest]\nlookback = 3\n", encoding="utf-8")
    done = digest("check", cwd=tmp_path)
    assert done.returncode == 2
    assert "digest init --print" in done.stderr
    assert "config.example.toml" not in done.stderr


def _on_a_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; the exit status and what the terminal showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    clean = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=terminal, env=clean,
    )  # fmt: skip
    os.close(terminal)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.wait(timeout=60), shown.decode("utf-8", "replace")


def test_a_terminal_sees_retries_as_they_happen_and_the_sending(
    tmp_path: Path, server: LocalServer
) -> None:
    page = (PAGES / sorted(p.name for p in PAGES.glob("*.txt"))[0]).read_bytes()
    server.script.replies["/today.txt"] = [Reply(503), Reply(200, page)]
    sources = f'[[sources]]\nkind = "page"\nurl = "{server.url}/today.txt"\n'
    config = write_config(tmp_path, sources)
    config.write_text(config.read_text() + "[fetch]\nbackoff = 0.1\nretries = 2\n")
    status, shown = _on_a_terminal("run", cwd=tmp_path)
    assert status == 0, shown
    assert re.search(r"today\.txt: .*503.*; trying again in \d+\.\d s", shown), shown
    assert "digest: reading" in shown and "digest: sending" in shown
    # and nothing of it without a terminal
    server.script.replies["/today.txt"] = [Reply(503), Reply(200, page)]
    piped = digest("run", "--dry-run", cwd=tmp_path)
    assert "trying again" not in piped.stderr and "reading" not in piped.stderr


def starter(folder: Path) -> dict[str, str]:
    """A folder with the starter config (real papers, non-ASCII titles among them), run once."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    env["DIGEST_CONFIG"] = str(folder / "digest.toml")
    for command in (["init"], ["run"]):
        subprocess.run([sys.executable, "-m", "digest", *command], cwd=folder, env=env,
                       capture_output=True, check=True, timeout=120)  # fmt: skip
    return env


def test_output_survives_any_locale(tmp_path: Path) -> None:
    env = starter(tmp_path)
    for extra in ({"LC_ALL": "C", "PYTHONUTF8": "0"}, {"PYTHONIOENCODING": "ascii"},
                  {"PYTHONIOENCODING": "latin-1"}):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "digest", "seen", "list"], cwd=tmp_path, env={**env, **extra},
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert b"Traceback" not in done.stderr and done.stdout.count(b"\n") > 10
    assert "\\u03a3-Mem" in subprocess.run(  # "Σ-Mem", escaped where ASCII is all there is
        [sys.executable, "-m", "digest", "seen", "list"], cwd=tmp_path,
        env={**env, "PYTHONIOENCODING": "ascii"}, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def test_a_closed_pipe_or_stream_is_no_error(tmp_path: Path) -> None:
    env = starter(tmp_path)
    digest_cmd = f"{sys.executable} -m digest"
    piped = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {digest_cmd} --print-completion bash | head -1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0 and "Traceback" not in piped.stderr, piped.stderr
    (tmp_path / "digest.db").rename(tmp_path / "old.db")
    closed = subprocess.run(
        ["bash", "-c", f"{digest_cmd} run 2>&-"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert closed.returncode == 0, closed.stdout
    assert "sent 2 of 2 digests" in closed.stdout
