-- name: patients_by_age_band_and_sex
-- description: Patients per age band (0-17, 18-39, 40-64, 65+, unknown) and sex, ages as of the
--   reference date of the last gold run.
SELECT CASE
         WHEN age_years IS NULL THEN 'unknown'
         WHEN age_years < 18 THEN '0-17'
         WHEN age_years < 40 THEN '18-39'
         WHEN age_years < 65 THEN '40-64'
         ELSE '65+'
       END AS age_band,
       COALESCE(sex, 'unknown') AS sex,
       COUNT(*) AS patients
FROM gold.patient_summary
GROUP BY 1, 2
ORDER BY 1, 2
