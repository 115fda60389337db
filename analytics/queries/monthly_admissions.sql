-- name: monthly_admissions
-- description: Inpatient admissions per month: encounters of class IMP (inpatient), ACUTE or
--   NONAC (v3 ActCode) by the UTC month they started in.
SELECT month,
       SUM(encounter_count) AS admissions
FROM gold.encounter_monthly
WHERE class_code IN ('IMP', 'ACUTE', 'NONAC')
GROUP BY month
ORDER BY month
