"""Project hygiene: Snakemake lint and format, conda envs in step with the pins, CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
#: conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"python-kubernetes": "kubernetes", "pyyaml": "pyyaml"}
#: optional extras, pinned in pyproject.toml instead of constraints.txt
EXTRAS = {"torch": "2.13.0", "darts": "0.48.1"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _constraints() -> dict[str, str]:
    out = {}
    for line in (PROJECT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            out[_norm(name.split("[")[0])] = ver.strip()
    return out


def _env_pins(path: Path) -> list[tuple[str, str]]:
    env = yaml.safe_load(path.read_text())
    pins = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for p in dep.get("pip", []):
                name, ver = p.split("==")
                pins.append((_norm(name.split("[")[0]), ver))
        elif "=" in dep:
            name, ver = dep.split("=", 1)
            pins.append((_norm(CONDA_TO_PYPI.get(name, name)), ver))
    return pins


@pytest.mark.parametrize("env", sorted((PROJECT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_envs_pin_the_same_versions_as_constraints(env):
    pins = _constraints()
    checked = 0
    for name, ver in _env_pins(env):
        if name == "python":
            assert ver == "3.11"
            continue
        if name in EXTRAS:
            assert ver == EXTRAS[name] and f"{name}" in (PROJECT / "pyproject.toml").read_text()
            checked += 1
            continue
        assert name in pins, f"{env.name}: {name} is not in constraints.txt"
        assert pins[name] == ver, f"{env.name}: {name}={ver}, constraints.txt has {pins[name]}"
        checked += 1
    assert checked >= 3


def test_every_rule_has_a_conda_env_and_a_log():
    text = "".join(p.read_text() for p in (PROJECT / "rules").glob("*.smk"))
    rules = re.split(r"\n(?=rule \w+:)", text)
    for block in rules[1:]:
        name = re.match(r"rule (\w+):", block).group(1)
        if "script:" in block or "shell:" in block:
            assert "    log:" in block, f"rule {name} has no log"
            assert "    conda:" in block, f"rule {name} has no conda env"


def test_snakefmt_clean():
    out = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=PROJECT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_snakemake_lint_clean(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--config", f"results={tmp_path / 'r'}",
         f"data_dir={tmp_path / 'd'}"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "Lints for" not in text, text[-4000:]


def test_faro_validate_trace_cli(tmp_path):
    good = tmp_path / "t.json"
    good.write_text('{"ts": 0, "counts": {"a": {"classifier": 3}}}\n'
                    '{"ts": 1, "counts": {"a": {"classifier": 4}}}\n')
    ok = subprocess.run([sys.executable, "-m", "faro.cli", "validate-trace", str(good)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "1 jobs" in ok.stdout and "7 requests" in ok.stdout
    bad = tmp_path / "b.json"
    bad.write_text('{"ts": 0, "counts": {"a": {"classifier": 3}}}\n'
                   '{"ts": 1, "counts": {"a": {"classifier": -4}}}\n')
    no = subprocess.run([sys.executable, "-m", "faro.cli", "validate-trace", str(bad)],
                        capture_output=True, text=True)
    assert no.returncode == 1 and "b.json:2: job 'a' has a negative count -4" in no.stderr


def test_every_config_key_has_a_description_and_a_default():
    schema = yaml.safe_load((PROJECT / "config/schema/config.schema.yaml").read_text())
    missing = []

    def walk(node: dict, path: str) -> None:
        for key, sub in (node.get("properties") or {}).items():
            where = f"{path}.{key}" if path else key
            if "description" not in sub or "default" not in sub:
                missing.append(where)
            walk(sub, where)

    walk(schema, "")
    assert missing == [], f"config keys without description or default: {missing}"
