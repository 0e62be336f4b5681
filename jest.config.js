/**
 * Jest runs the TypeScript sources as ESM through swc (no type check here: `npm run typecheck` does that).
 *
 * Tests named `*.slow.test.ts` wait in real time (minutes; see each file's header), so a plain
 * `jest` leaves them out: scripts/test.sh runs them in a jest of their own, in the background,
 * with RINGMASTER_SLOW_TESTS=1. Naming a slow file on the command line runs it too
 * (`npx jest test/home-kubeconfig-expiry.slow.test.ts`).
 */
const SLOW_TEST = /\.slow\.test\.ts$/;
const includeSlow = process.env.RINGMASTER_SLOW_TESTS === '1' || process.argv.some((argument) => SLOW_TEST.test(argument));

export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...(includeSlow ? [] : [SLOW_TEST.source])],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  setupFiles: ['<rootDir>/test/helpers/quiet-logs.ts'],
  testTimeout: 30000,
};
