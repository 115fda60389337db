-- name: active_medications_per_patient
-- description: Number of active medication requests per patient (patients with at least one),
--   most first: five or more is the usual polypharmacy flag.
SELECT patient_key,
       COUNT(*) AS active_medications
FROM gold.active_medications
GROUP BY patient_key
ORDER BY active_medications DESC, patient_key
