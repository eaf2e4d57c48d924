"""What a user gets from the package metadata and the sdist."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _metadata() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def test_the_licence_the_metadata_names_is_shipped():
    assert _metadata()["metadata"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_python_running_the_tests_is_a_classifier():
    classifiers = _metadata()["metadata"]["classifiers"].split("\n")
    version = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    assert version in classifiers, f"CI runs {version}; add it to setup.cfg's classifiers"
    assert "Operating System :: POSIX :: Linux" in classifiers


@pytest.mark.slow
def test_the_sdist_carries_every_tracked_test_example_doc_and_benchmark(tmp_path):
    try:
        tracked = subprocess.run(["git", "ls-files", "tests", "examples", "docs", "benchmarks"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (an unpacked sdist has nothing to compare with)")
    build = f"from setuptools import build_meta; build_meta.build_sdist({str(tmp_path)!r})"
    subprocess.run([sys.executable, "-c", build], cwd=ROOT, check=True, capture_output=True)
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        shipped = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = sorted(set(tracked) - shipped)
    assert not missing, f"MANIFEST.in leaves out {missing}"
