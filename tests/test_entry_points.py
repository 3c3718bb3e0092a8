"""Every documented entry point runs as a user types it: `python -m bnlib.<module>` and every make target.

Importing a module does not run what stands after its `if __name__ == "__main__":` block, so a function defined
there is missing only when the module runs as a program. These tests run each entry point as a subprocess.
"""

import ast
import os
import re
import subprocess
import sys

import pytest

from bnlib.paths import FIGURES_DIR, REPO_ROOT

ENTRY_MODULES = ("runner", "refresh", "check", "report", "appendix")
SCRIPTS = sorted([*REPO_ROOT.glob("bnlib/*.py"), *REPO_ROOT.glob("benchmarks/*.py"), *REPO_ROOT.glob("tools/*.py")])


def _python(*args, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          **kwargs)


def _is_main_guard(node) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and "__name__" in ast.unparse(node.test)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nothing_is_defined_after_the_main_block(path):
    body = ast.parse(path.read_text()).body
    guards = [i for i, node in enumerate(body) if _is_main_guard(node)]
    assert guards in ([], [len(body) - 1]), \
        f"{path.name}: statements after `if __name__ == '__main__':` run only on import, never as a program"


def test_the_check_above_catches_a_late_definition():
    body = ast.parse('def main():\n    late()\n\n\nif __name__ == "__main__":\n    main()\n\n\ndef late():\n'
                     '    pass\n').body
    assert [i for i, node in enumerate(body) if _is_main_guard(node)] == [1] and len(body) == 3


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_every_module_entry_point_answers_help(module):
    done = _python("-m", f"bnlib.{module}", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def committed_profiles() -> list[str]:
    return sorted(p.name for p in FIGURES_DIR.iterdir() if (p / "README.md").is_file())


@pytest.mark.parametrize("profile", committed_profiles())
def test_report_runs_as_a_program_on_every_committed_profile(profile):
    done = _python("-m", "bnlib.report", profile)
    assert done.returncode == 0, done.stderr[-3000:]
    from bnlib import claims, pages

    ablation = (FIGURES_DIR / profile / "ablation_shared.csv").is_file()
    assert done.stdout == (pages.ablation(profile) if ablation else pages.profile_report(profile)) + "\n"
    assert done.stdout.startswith("| variant | test accuracy |")
    assert ablation or f"1. *{claims.CLAIMS[1]}*" in done.stdout


def test_report_on_an_unknown_profile_names_it_and_the_committed_ones():
    done = _python("-m", "bnlib.report", "no-such-profile")
    assert done.returncode == 2
    assert "figures/no-such-profile/" in done.stderr and "quick" in done.stderr


def test_make_report_prints_the_results_of_the_profile():
    done = subprocess.run(["make", "--no-print-directory", "report", "PROFILE=quick"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    from bnlib import claims

    assert f"1. *{claims.CLAIMS[1]}*" in done.stdout


def make_targets() -> list[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    phony = re.findall(r"^\.PHONY: (.+)$", text, flags=re.M)[0].split()
    notebooks = [re.sub(r"^\d\d_", "", p.stem) for p in sorted(REPO_ROOT.glob("notebooks/[0-9][0-9]_*.py"))]
    return phony + notebooks


@pytest.mark.parametrize("target", make_targets())
def test_every_make_target_resolves(target):
    """`make -n` expands each target's recipe without running it: a typo in a variable, a missing rule or a
    target the README names but the Makefile lacks fails here."""
    done = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env=os.environ | {"PROFILE": "smoke"})
    assert done.returncode == 0, done.stderr
    assert "bnlib" in done.stdout or target in ("env", "ray-env", "clean-env", "test", "lab", "benchmarks",
                                                "gpu-bundle"), done.stdout


def test_every_make_target_the_readme_names_exists():
    named = set(re.findall(r"^make ([a-z0-9-]+)", (REPO_ROOT / "README.md").read_text(), flags=re.M))
    assert named and named <= set(make_targets()), named - set(make_targets())
