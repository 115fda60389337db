// Terminology the synthetic population draws from: real LOINC, SNOMED CT, ICD-10-CM, RxNorm and
// CVX codes with UCUM units, so downstream views and gold aggregates see realistic codings.

export const LOINC = "http://loinc.org";
export const SNOMED = "http://snomed.info/sct";
export const ICD10 = "http://hl7.org/fhir/sid/icd-10-cm";
export const RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm";
export const CVX = "http://hl7.org/fhir/sid/cvx";
export const UCUM = "http://unitsofmeasure.org";
export const OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category";
export const CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical";
export const CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
export const CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category";
export const ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
export const DIAG_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074";
export const MRN_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14";
export const EPIC_OUTCOME_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369";

export interface QuantityCode {
  code: string;
  display: string;
  unit: string;
  mean: number;
  spread: number;
  digits: number;
}

/** Vital signs taken at every ambulatory encounter (blood pressure is a panel with components). */
export const VITALS: QuantityCode[] = [
  { code: "8867-4", display: "Heart rate", unit: "/min", mean: 74, spread: 14, digits: 0 },
  { code: "9279-1", display: "Respiratory rate", unit: "/min", mean: 16, spread: 3, digits: 0 },
  { code: "8310-5", display: "Body temperature", unit: "Cel", mean: 36.8, spread: 0.5, digits: 1 },
  { code: "29463-7", display: "Body weight", unit: "kg", mean: 78, spread: 22, digits: 1 },
  { code: "8302-2", display: "Body height", unit: "cm", mean: 170, spread: 14, digits: 1 },
  { code: "39156-5", display: "Body mass index (BMI) [Ratio]", unit: "kg/m2", mean: 27, spread: 6, digits: 1 },
  { code: "59408-5", display: "Oxygen saturation in Arterial blood by Pulse oximetry", unit: "%", mean: 97, spread: 2, digits: 0 },
];
export const BP_PANEL = { code: "85354-9", display: "Blood pressure panel with all children optional" };
export const BP_SYSTOLIC = { code: "8480-6", display: "Systolic blood pressure" };
export const BP_DIASTOLIC = { code: "8462-4", display: "Diastolic blood pressure" };

export interface LabPanel {
  code: string;
  display: string;
  members: Array<
    | ({ kind: "quantity" } & QuantityCode)
    | { kind: "concept"; code: string; display: string; answers: Array<{ code: string; display: string }> }
    | { kind: "string"; code: string; display: string; answers: string[] }
  >;
}

export const HBA1C = "4548-4";
export const LAB_PANELS: LabPanel[] = [
  {
    code: "51990-0",
    display: "Basic metabolic panel - Blood",
    members: [
      {
        kind: "quantity",
        code: "2345-7",
        display: "Glucose [Mass/volume] in Serum or Plasma",
        unit: "mg/dL",
        mean: 105,
        spread: 30,
        digits: 0,
      },
      {
        kind: "quantity",
        code: "2951-2",
        display: "Sodium [Moles/volume] in Serum or Plasma",
        unit: "mmol/L",
        mean: 139,
        spread: 4,
        digits: 0,
      },
      {
        kind: "quantity",
        code: "2823-3",
        display: "Potassium [Moles/volume] in Serum or Plasma",
        unit: "mmol/L",
        mean: 4.2,
        spread: 0.5,
        digits: 1,
      },
      {
        kind: "quantity",
        code: "2160-0",
        display: "Creatinine [Mass/volume] in Serum or Plasma",
        unit: "mg/dL",
        mean: 0.95,
        spread: 0.3,
        digits: 2,
      },
      {
        kind: "quantity",
        code: "33914-3",
        display: "Glomerular filtration rate/1.73 sq M.predicted",
        unit: "mL/min/{1.73_m2}",
        mean: 85,
        spread: 20,
        digits: 0,
      },
    ],
  },
  {
    code: "57698-3",
    display: "Lipid panel with direct LDL - Serum or Plasma",
    members: [
      {
        kind: "quantity",
        code: "2093-3",
        display: "Cholesterol [Mass/volume] in Serum or Plasma",
        unit: "mg/dL",
        mean: 190,
        spread: 35,
        digits: 0,
      },
      {
        kind: "quantity",
        code: "2571-8",
        display: "Triglyceride [Mass/volume] in Serum or Plasma",
        unit: "mg/dL",
        mean: 140,
        spread: 50,
        digits: 0,
      },
      {
        kind: "quantity",
        code: "2085-9",
        display: "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        unit: "mg/dL",
        mean: 52,
        spread: 12,
        digits: 0,
      },
      {
        kind: "quantity",
        code: "13457-7",
        display: "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
        unit: "mg/dL",
        mean: 110,
        spread: 30,
        digits: 0,
      },
    ],
  },
  {
    code: "58410-2",
    display: "CBC panel - Blood by Automated count",
    members: [
      { kind: "quantity", code: "718-7", display: "Hemoglobin [Mass/volume] in Blood", unit: "g/dL", mean: 14, spread: 1.6, digits: 1 },
      {
        kind: "quantity",
        code: "6690-2",
        display: "Leukocytes [#/volume] in Blood by Automated count",
        unit: "10*3/uL",
        mean: 7,
        spread: 2.2,
        digits: 1,
      },
      {
        kind: "quantity",
        code: "777-3",
        display: "Platelets [#/volume] in Blood by Automated count",
        unit: "10*3/uL",
        mean: 250,
        spread: 60,
        digits: 0,
      },
    ],
  },
  {
    code: HBA1C,
    display: "Hemoglobin A1c/Hemoglobin.total in Blood",
    members: [
      { kind: "quantity", code: HBA1C, display: "Hemoglobin A1c/Hemoglobin.total in Blood", unit: "%", mean: 5.6, spread: 0.6, digits: 1 },
    ],
  },
  {
    code: "24356-8",
    display: "Urinalysis complete panel - Urine",
    members: [
      {
        kind: "concept",
        code: "20454-5",
        display: "Protein [Presence] in Urine by Test strip",
        answers: [
          { code: "260385009", display: "Negative" },
          { code: "10828004", display: "Positive" },
        ],
      },
      { kind: "string", code: "5767-9", display: "Appearance of Urine", answers: ["Clear", "Slightly cloudy", "Cloudy"] },
      { kind: "quantity", code: "5803-2", display: "pH of Urine by Test strip", unit: "[pH]", mean: 6, spread: 1, digits: 1 },
    ],
  },
];

export const SMOKING_STATUS = { code: "72166-2", display: "Tobacco smoking status" };
export const SMOKING_ANSWERS = [
  { code: "266919005", display: "Never smoker" },
  { code: "8517006", display: "Ex-smoker" },
  { code: "449868002", display: "Smokes tobacco daily" },
];

export interface ConditionCode {
  snomed: string;
  icd10: string;
  display: string;
  chronic: boolean;
  weight: number;
}
export const DIABETES: ConditionCode = {
  snomed: "44054006",
  icd10: "E11.9",
  display: "Type 2 diabetes mellitus",
  chronic: true,
  weight: 0,
};
export const CONDITIONS: ConditionCode[] = [
  { snomed: "38341003", icd10: "I10", display: "Essential hypertension", chronic: true, weight: 3 },
  { snomed: "55822004", icd10: "E78.5", display: "Hyperlipidemia", chronic: true, weight: 3 },
  { snomed: "195967001", icd10: "J45.909", display: "Asthma", chronic: true, weight: 1 },
  { snomed: "235595009", icd10: "K21.9", display: "Gastroesophageal reflux disease", chronic: true, weight: 2 },
  { snomed: "35489007", icd10: "F32.9", display: "Depressive disorder", chronic: true, weight: 2 },
  { snomed: "396275006", icd10: "M19.90", display: "Osteoarthritis", chronic: true, weight: 2 },
  { snomed: "414916001", icd10: "E66.9", display: "Obesity", chronic: true, weight: 2 },
  { snomed: "40930008", icd10: "E03.9", display: "Hypothyroidism", chronic: true, weight: 1 },
  { snomed: "37796009", icd10: "G43.909", display: "Migraine", chronic: true, weight: 1 },
  { snomed: "10509002", icd10: "J20.9", display: "Acute bronchitis", chronic: false, weight: 2 },
  { snomed: "68566005", icd10: "N39.0", display: "Urinary tract infectious disease", chronic: false, weight: 2 },
  { snomed: "36971009", icd10: "J32.9", display: "Sinusitis", chronic: false, weight: 2 },
  { snomed: "44465007", icd10: "S93.409A", display: "Sprain of ankle", chronic: false, weight: 1 },
];

export interface MedicationCode {
  rxnorm: string;
  display: string;
  dose: string;
  forCondition?: string;
}
export const MEDICATIONS: MedicationCode[] = [
  { rxnorm: "861007", display: "metformin hydrochloride 500 MG Oral Tablet", dose: "500 mg twice daily", forCondition: "44054006" },
  { rxnorm: "314076", display: "lisinopril 10 MG Oral Tablet", dose: "10 mg daily", forCondition: "38341003" },
  { rxnorm: "617310", display: "atorvastatin 20 MG Oral Tablet", dose: "20 mg daily", forCondition: "55822004" },
  { rxnorm: "197361", display: "amlodipine 5 MG Oral Tablet", dose: "5 mg daily", forCondition: "38341003" },
  { rxnorm: "745679", display: "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", dose: "2 puffs as needed", forCondition: "195967001" },
  { rxnorm: "198053", display: "omeprazole 20 MG Delayed Release Oral Capsule", dose: "20 mg daily", forCondition: "235595009" },
  { rxnorm: "312940", display: "sertraline 50 MG Oral Tablet", dose: "50 mg daily", forCondition: "35489007" },
  { rxnorm: "966222", display: "levothyroxine sodium 0.05 MG Oral Tablet", dose: "50 mcg daily", forCondition: "40930008" },
  { rxnorm: "308191", display: "amoxicillin 500 MG Oral Capsule", dose: "500 mg three times daily for 10 days" },
  { rxnorm: "197805", display: "ibuprofen 400 MG Oral Tablet", dose: "400 mg every 6 hours as needed" },
];

export const ALLERGENS = [
  { code: "764146007", display: "Penicillin", category: "medication" },
  { code: "762952008", display: "Peanut", category: "food" },
  { code: "111088007", display: "Latex", category: "environment" },
  { code: "387406002", display: "Sulfonamide", category: "medication" },
  { code: "227037002", display: "Fish - dietary (substance)", category: "food" },
];
export const REACTIONS = [
  { code: "247472004", display: "Hives" },
  { code: "271807003", display: "Eruption of skin" },
  { code: "267036007", display: "Dyspnea" },
  { code: "39579001", display: "Anaphylaxis" },
];

export const PROCEDURES = [
  { code: "73761001", display: "Colonoscopy" },
  { code: "430193006", display: "Medication reconciliation" },
  { code: "171207006", display: "Depression screening" },
  { code: "71651007", display: "Mammography" },
  { code: "80146002", display: "Excision of appendix" },
  { code: "162673000", display: "General examination of patient" },
  { code: "268556000", display: "Urine screening for glucose" },
];

export const VACCINES = [
  { code: "140", display: "Influenza, seasonal, injectable, preservative free" },
  { code: "208", display: "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose" },
  { code: "115", display: "Tdap" },
  { code: "133", display: "Pneumococcal conjugate PCV 13" },
  { code: "121", display: "zoster live" },
  { code: "43", display: "Hep B, adult" },
];

export const ENCOUNTER_TYPES = [
  { code: "185349003", display: "Encounter for check up", cls: "AMB" },
  { code: "185345009", display: "Encounter for symptom", cls: "AMB" },
  { code: "390906007", display: "Follow-up encounter", cls: "AMB" },
  { code: "50849002", display: "Emergency room admission", cls: "EMER" },
  { code: "32485007", display: "Hospital admission", cls: "IMP" },
];

export const FAMILY_NAMES = [
  "Smith",
  "Johnson",
  "Williams",
  "Brown",
  "Jones",
  "Garcia",
  "Miller",
  "Davis",
  "Rodriguez",
  "Martinez",
  "Hernandez",
  "Lopez",
  "Gonzalez",
  "Wilson",
  "Anderson",
  "Thomas",
  "Taylor",
  "Moore",
  "Jackson",
  "Martin",
  "Lee",
  "Perez",
  "Thompson",
  "White",
  "Harris",
  "Sanchez",
  "Clark",
  "Ramirez",
  "Lewis",
  "Robinson",
  "Walker",
  "Young",
  "Allen",
  "King",
  "Wright",
  "Scott",
  "Torres",
  "Nguyen",
  "Hill",
  "Flores",
];
export const GIVEN_FEMALE = [
  "Mary",
  "Patricia",
  "Jennifer",
  "Linda",
  "Elizabeth",
  "Barbara",
  "Susan",
  "Jessica",
  "Sarah",
  "Karen",
  "Lisa",
  "Nancy",
  "Betty",
  "Sandra",
  "Margaret",
  "Ashley",
  "Kimberly",
  "Emily",
  "Donna",
  "Michelle",
];
export const GIVEN_MALE = [
  "James",
  "Robert",
  "John",
  "Michael",
  "David",
  "William",
  "Richard",
  "Joseph",
  "Thomas",
  "Christopher",
  "Charles",
  "Daniel",
  "Matthew",
  "Anthony",
  "Mark",
  "Donald",
  "Steven",
  "Paul",
  "Andrew",
  "Joshua",
];
export const STREETS = ["Maple", "Oak", "Pine", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Main", "Sunset", "River"];
export const STREET_KINDS = ["St", "Ave", "Rd", "Ln", "Dr", "Ct"];
export const CITIES = [
  { city: "Madison", state: "WI", zip: "537" },
  { city: "Verona", state: "WI", zip: "535" },
  { city: "Milwaukee", state: "WI", zip: "532" },
  { city: "Green Bay", state: "WI", zip: "543" },
  { city: "Rockford", state: "IL", zip: "611" },
  { city: "Minneapolis", state: "MN", zip: "554" },
];
export const SPECIALTIES = [
  { code: "207Q00000X", display: "Family Medicine" },
  { code: "207R00000X", display: "Internal Medicine" },
  { code: "207RE0101X", display: "Endocrinology, Diabetes & Metabolism" },
  { code: "207RC0000X", display: "Cardiovascular Disease" },
  { code: "207P00000X", display: "Emergency Medicine" },
];
