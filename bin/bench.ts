/*
|--------------------------------------------------------------------------
| Benchmark entry point (`npm run bench`)
|--------------------------------------------------------------------------
|
| Node 24 runs this file itself (type stripping), but the app code it
| drives needs decorators and the `.js` → `.ts` import mapping: the
| TypeScript loader the ace entry uses is registered first (as ace.js
| does), then the benchmark is imported. Not part of the test suite.
| See docs/benchmarks.md.
|
*/
await import('@poppinss/ts-exec')

const { main } = await import('./bench/main.js')
await main(process.argv.slice(2))
