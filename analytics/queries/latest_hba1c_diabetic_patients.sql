-- name: latest_hba1c_diabetic_patients
-- description: Latest HbA1c (LOINC 4548-4) of every patient with type 2 diabetes (ICD-10-CM E11.*
--   or SNOMED CT 44054006, in any clinical status, not refuted or entered in error). Patients
--   never tested are listed with empty values: they are the care gap.
WITH diabetic AS (
  SELECT DISTINCT patient_key
  FROM silver.condition
  WHERE (icd10_code LIKE 'E11%' OR snomed_code = '44054006')
    AND (verification_status IS NULL OR verification_status NOT IN ('refuted', 'entered-in-error'))
    AND patient_key IS NOT NULL
)
SELECT d.patient_key,
       o.value_quantity AS hba1c,
       o.value_unit AS unit,
       o.effective_at AS measured_at
FROM diabetic d
LEFT JOIN gold.latest_observation o
  ON o.patient_key = d.patient_key
 AND o.code_system = 'http://loinc.org'
 AND o.code = '4548-4'
ORDER BY d.patient_key
