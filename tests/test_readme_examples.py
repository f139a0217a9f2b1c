"""The README's shell examples run as written, in order, from a fresh folder (issue 14).

Every fenced ``bash`` block of README.md whose commands are ``qgis_process run ...`` lines is
run with bash in one temporary folder, in README order, with ``qgis_process`` on PATH being
this checkout's ``build/bin/qgis_process`` and ``resources/`` linked in (the README says to
run them from the repository root). Each command must succeed, write every file it names,
and print no Python traceback.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTPUT_FILE = re.compile(r"(?:^|\s|:)([A-Z_]+)=([\w./-]+\.(?:tif|gpkg|html|csv|pt))(?=\s|$)")


def readme_commands(text):
    """The ``qgis_process run`` commands of the README's bash blocks, continuations joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if lines and all(line.startswith("qgis_process run ") for line in lines):
            commands += lines
    return commands


def test_the_readme_has_the_examples_it_promises():
    commands = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))
    ids = [c.split()[2] for c in commands]
    for alg in ("okadadisplacement", "synthesizescene", "extractdisplacement", "decomposelos", "interpolategnss",
                "evaluatedisplacement", "benchmarkmodel", "trainmodel", "importgnss", "projectlos"):
        assert f"insargnss3d:{alg}" in ids
    assert "resources/models/synthesize_extract_evaluate.model3" in ids
    for c in commands:                              # files the user does not have
        assert "my_dem" not in c and "my_stations" not in c
        for path in re.findall(r"=(resources/[\w./-]+)", c):
            assert (REPO / path).is_file(), path
    # every file output has its own name (no example overwrites another's output)
    written = [m.group(2) for c in commands for m in OUTPUT_FILE.finditer(c)
               if m.group(1) in ("OUTPUT", "INSAR_ASC", "INSAR_DESC", "LOS_ASC", "LOS_DESC", "DEM_OUT", "GNSS",
                                 "TRUTH", "FAULT", "REPORT", "OUTPUT_TABLE", "DISPLACEMENT")
               and ("OUTPUT" in m.group(1) or "REPORT" in m.group(1) or "synthesizescene" in c
                    or "model3" in c)]
    assert len(written) == len(set(written)), sorted(written)


@pytest.mark.slow
def test_readme_examples_run_in_order_from_a_fresh_folder(tmp_path):
    commands = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "qgis_process"
    wrapper.write_text(f'#!/bin/bash\nexec "{REPO}/build/bin/qgis_process" "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "resources").symlink_to(REPO / "resources")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    for command in commands:
        before = set(os.listdir(work))
        proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{command}\n{log[-3000:]}"
        assert "Traceback" not in log, f"{command}\n{log[-3000:]}"
        for m in OUTPUT_FILE.finditer(command):
            name = m.group(2)
            if "/" in name or name in before:
                continue                  # an input (resources/...) or an earlier output
            assert (work / name).is_file(), f"{command}: {name} was not written\n{log[-2000:]}"
    assert not list(work.glob("*.part"))
