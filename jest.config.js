/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test", "<rootDir>/lib", "<rootDir>/lambdas"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true, diagnostics: false }] },
  setupFiles: ["<rootDir>/test/setup-env.ts"],
  testTimeout: 120000,
  // Spark-backed end-to-end tests and CDK synth are CPU heavy; two workers match CI's two cores.
  maxWorkers: 2,
};
