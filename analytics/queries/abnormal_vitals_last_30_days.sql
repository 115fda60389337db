-- name: abnormal_vitals_last_30_days
-- description: Vital-sign readings outside the adult normal range in the 30 days up to the newest
--   vital sign in the lake (so the answer does not depend on the day it runs): systolic BP below
--   90 or above 139 mm[Hg], diastolic below 60 or above 89, heart rate below 50 or above 100/min,
--   respiratory rate below 12 or above 20/min, body temperature below 35 or above 37.9 Cel,
--   oxygen saturation below 92 %.
WITH limits (code, low, high) AS (
  VALUES ('8480-6', 90.0, 139.0),
         ('8462-4', 60.0, 89.0),
         ('8867-4', 50.0, 100.0),
         ('9279-1', 12.0, 20.0),
         ('8310-5', 35.0, 37.9),
         ('59408-5', 92.0, 100.0),
         ('2708-6', 92.0, 100.0)
),
vitals AS (
  SELECT o.patient_key, o.code, o.code_display, o.value_quantity, o.value_unit, o.effective_at,
         l.low, l.high
  FROM silver.observation o
  JOIN limits l ON l.code = o.code
  WHERE o.code_system = 'http://loinc.org'
    AND o.value_quantity IS NOT NULL
    AND o.effective_at IS NOT NULL
    AND (o.status IS NULL OR o.status <> 'entered-in-error')
),
window_start AS (
  SELECT CAST(CAST(MAX(effective_at) AS DATE) - INTERVAL '30' DAY AS DATE) AS after_date
  FROM vitals
)
SELECT v.patient_key,
       v.code,
       v.code_display,
       v.value_quantity,
       v.value_unit,
       v.effective_at
FROM vitals v
CROSS JOIN window_start w
WHERE v.patient_key IS NOT NULL
  AND CAST(v.effective_at AS DATE) > w.after_date
  AND (v.value_quantity < v.low OR v.value_quantity > v.high)
ORDER BY v.patient_key, v.effective_at, v.code
