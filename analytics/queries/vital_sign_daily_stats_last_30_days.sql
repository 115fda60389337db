-- name: vital_sign_daily_stats_last_30_days
-- description: Daily count, median and 95th percentile of the common vital signs (blood pressure,
--   heart rate, respiratory rate, temperature, oxygen saturation) over the 30 days up to the
--   newest day in the table.
WITH vitals AS (
  SELECT *
  FROM gold.observation_daily_stats
  WHERE code_system = 'http://loinc.org'
    AND code IN ('8480-6', '8462-4', '8867-4', '9279-1', '8310-5', '59408-5', '2708-6')
),
window_start AS (
  SELECT CAST(MAX(day) - INTERVAL '30' DAY AS DATE) AS after_date
  FROM vitals
)
SELECT v.code,
       v.code_display,
       v.value_unit,
       v.day,
       v.value_count,
       v.p50_value,
       v.p95_value
FROM vitals v
CROSS JOIN window_start w
WHERE v.day > w.after_date
ORDER BY v.code, v.value_unit, v.day
