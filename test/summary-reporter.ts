import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

/**
 * Ends every run with one plain line, `N passed, M failed[, K skipped]`, that CI reads.
 * Only what was meant to be skipped counts as skipped: the tests a failing `beforeAll`
 * kept from running count as failed, and so does a suite (or file) whose own hooks
 * failed after its tests passed, or a file that did not load.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed' || underFailedHook(test)) failed++;
        else skipped++;
      }
      // A hook's error that failed no test (an afterAll, or a file without tests) is one failure.
      for (const container of [module, ...module.children.allSuites()]) {
        if (container.errors().length === 0) continue;
        const tests = [...container.children.allTests()];
        if (tests.every((test) => test.result().state === 'passed')) failed++;
      }
    }
    failed += errors.length;
    console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  }
}

/** Whether a suite or file around the test reported an error of its own (a failed beforeAll, say). */
function underFailedHook(test: TestCase): boolean {
  for (let parent: TestSuite | TestModule = test.parent; ; parent = parent.parent) {
    if (parent.errors().length > 0) return true;
    if (parent.type === 'module') return false;
  }
}
