/*
|--------------------------------------------------------------------------
| JavaScript entrypoint for running ace commands
|--------------------------------------------------------------------------
|
| Registers the TypeScript loader, then hands over to bin/console.ts.
| Run through npm scripts or `npx node ace …` so that Node 24 (the `node`
| devDependency) executes it.
|
*/
import '@poppinss/ts-exec'

await import('./bin/console.js')
