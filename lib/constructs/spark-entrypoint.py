"""EMR Serverless entry point of the spark-jobs package (uploaded by lib/constructs/spark-job-package.ts).

spark-submit needs a file to run; the package itself arrives as a zip on spark.submit.pyFiles.
This runs `python -m fhir_lakehouse <job> --run-id ... --bronze ... --catalog glue` exactly as a
local run does, so the job's command line is the same in both places.
"""

import runpy
import sys

if __name__ == "__main__":
    sys.argv[0] = "fhir_lakehouse"
    runpy.run_module("fhir_lakehouse", run_name="__main__", alter_sys=True)
