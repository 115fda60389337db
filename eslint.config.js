// ESLint flat config: typescript-eslint recommended rules over the TypeScript sources.
const tseslint = require("typescript-eslint");
module.exports = tseslint.config(
  { ignores: ["node_modules/**", "cdk.out/**", "dist/**", "spark-jobs/**", ".work/**", "**/*.js"] },
  ...tseslint.configs.recommended,
);
