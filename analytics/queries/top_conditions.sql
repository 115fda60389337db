-- name: top_conditions
-- description: The 20 condition codes with the most patients. Codes whose count is suppressed
--   (below the small-cell threshold) are left out.
SELECT code_system,
       code,
       code_display,
       patient_count
FROM gold.condition_prevalence
WHERE NOT is_suppressed
ORDER BY patient_count DESC, code_system, code
LIMIT 20
