/*
|--------------------------------------------------------------------------
| Load harness entry point (`npm run load`)
|--------------------------------------------------------------------------
|
| As bin/bench.ts: Node 24 runs this file, the app's TypeScript loader is
| registered, then the harness is imported. Not part of the test suite.
| See docs/reliability.md (the harness) and docs/benchmarks.md (figures).
|
*/
await import('@poppinss/ts-exec')

const { main } = await import('./load/main.js')
await main(process.argv.slice(2))
