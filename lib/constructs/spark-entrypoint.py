"""EMR Serverless entry point of the spark-jobs package (uploaded by lib/constructs/spark-job-package.ts).

spark-submit needs a file to run; the package itself arrives as a zip on spark.submit.pyFiles.
The first argument names the job (silver, gold, maintenance); the rest is that job's command line
(`--run-id RUN --bronze URI --silver URI --gold URI --metrics URI --catalog glue`), exactly what a
local run passes to `python -m fhir_lakehouse.<job>_job`.
"""

import importlib
import sys

JOBS = ("silver", "gold", "maintenance")


def main(argv: list[str]) -> int:
    """Runs fhir_lakehouse.<job>_job.main with the job's arguments."""
    if not argv or argv[0] not in JOBS:
        print(
            f"usage: spark-entrypoint.py {{{','.join(JOBS)}}} [job arguments]",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(f"fhir_lakehouse.{argv[0]}_job")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
