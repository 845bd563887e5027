"""The README's two commands are exactly what CI runs."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("## The two commands (fresh machine, Python 3.11)")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    return [line.strip() for line in lines[start:end] if line.strip().startswith(("python3.11 ", ".venv/"))]


def test_ci_runs_exactly_the_readme_install_and_test_commands():
    commands = readme_commands()
    assert len(commands) == 2
    ci_lines = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_lines == commands
