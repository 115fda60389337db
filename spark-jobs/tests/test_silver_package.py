"""The silver job's default views load from the zipped package, as EMR Serverless runs it.

lib/constructs/spark-job-package.ts zips spark-jobs/src for spark.submit.pyFiles: the package is
then imported from the zip (zipimport), where no spark-jobs/views directory exists beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# What the CDK asset leaves out (SPARK_PACKAGE_EXCLUDES in lib/constructs/spark-job-package.ts).
EXCLUDED_PARTS = {"__pycache__", ".venv", ".jars", ".pytest_cache", ".ruff_cache", "tests"}


def zip_package(target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(SRC.rglob("*")):
            rel = path.relative_to(SRC)
            if path.is_dir() or EXCLUDED_PARTS & set(rel.parts) or path.suffix == ".pyc":
                continue
            if any(p.endswith(".egg-info") for p in rel.parts):
                continue
            zf.write(path, rel.as_posix())
    return target


def test_default_views_load_from_the_zipped_package(tmp_path: Path) -> None:
    package = zip_package(tmp_path / "spark-jobs.zip")
    names = set(zipfile.ZipFile(package).namelist())
    assert "fhir_lakehouse/default_views/observation.json" in names
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(package)!r})\n"
        "import fhir_lakehouse.silver_views as sv\n"
        "views = sv.load_silver_views()\n"
        "print(json.dumps({'module': sv.__file__, 'views': sorted(v.name for v in views)}))\n"
    )
    # A directory with nothing in it as the working directory: nothing found by relative paths.
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert ".zip" in doc["module"]  # imported from the zip, not from the source tree
    on_disk = sorted(p.stem for p in (SRC / "fhir_lakehouse" / "default_views").glob("*.json"))
    assert doc["views"] == on_disk and "observation" in doc["views"]


def test_spark_jobs_views_is_the_package_data() -> None:
    """spark-jobs/views (the documented place) and the package data are one set of files."""
    views = Path(__file__).resolve().parents[1] / "views"
    assert views.resolve() == (SRC / "fhir_lakehouse" / "default_views").resolve()
