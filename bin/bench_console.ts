/*
|--------------------------------------------------------------------------
| Console render benchmark (`npm run bench:console`)
|--------------------------------------------------------------------------
|
| GET /console with 20 KEKs and 100 runs: its own database, the app booted
| in this process with its HTTP server on a free port; time per request.
| Not part of the test suite. See docs/benchmarks.md.
|
*/
await import('@poppinss/ts-exec')

const { main } = await import('./bench/console_render.js')
await main(process.argv.slice(2))
