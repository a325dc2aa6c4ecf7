/*
|--------------------------------------------------------------------------
| signify-ts primitives, without its barrel
|--------------------------------------------------------------------------
|
| `import … from 'signify-ts'` evaluates the whole package: its client app
| and, through `Tholder`, all of mathjs (about 45 MB of RSS in every process
| that imports it, the production `rotate:kek` included). Signing,
| verifying, SAIDs and CESR counters need none of that: the modules below
| are the ones the barrel re-exports these names from, imported one by one.
| They are the same module instances (same URLs), so classes and codes are
| identical to the barrel's. The package's `exports` map only exposes its
| index, hence the URLs resolved next to it; signify-ts is pinned
| (package.json) and tests/unit/governance/signify.spec.ts checks every
| name here against the barrel.
|
| The event builders (`incept`, `rotate`) need `Tholder`: they stay on the
| barrel, in app/governance/key_event_builders.ts.
|
*/
import type * as Signify from 'signify-ts'

/** signify-ts' index (dist/index.js); the modules below sit next to it. */
const INDEX = import.meta.resolve('signify-ts')

const [readyModule, core, matter, indexer, counter, diger, siger, verfer, signer] =
  (await Promise.all(
    [
      './ready.js',
      './keri/core/core.js',
      './keri/core/matter.js',
      './keri/core/indexer.js',
      './keri/core/counter.js',
      './keri/core/diger.js',
      './keri/core/siger.js',
      './keri/core/verfer.js',
      './keri/core/signer.js',
    ].map((path) => import(new URL(path, INDEX).href))
  )) as Array<typeof Signify>

/** Resolves once libsodium (Ed25519) is ready. */
export const ready: typeof Signify.ready = readyModule.ready
/** UTF-8 bytes of a string. */
export const b: typeof Signify.b = core.b
/** Matter derivation codes. */
export const MtrDex: typeof Signify.MtrDex = matter.MtrDex
/** Indexer (indexed signature) codes. */
export const IdrDex: typeof Signify.IdrDex = indexer.IdrDex
/** Counter codes. */
export const CtrDex: typeof Signify.CtrDex = counter.CtrDex
/** CESR count codes. */
export const Counter: typeof Signify.Counter = counter.Counter
/** CESR digests (Blake3-256 among others). */
export const Diger: typeof Signify.Diger = diger.Diger
/** Indexed signatures. */
export const Siger: typeof Signify.Siger = siger.Siger
/** Public keys, verifying signatures. */
export const Verfer: typeof Signify.Verfer = verfer.Verfer
/** Ed25519 signing keys. */
export const Signer: typeof Signify.Signer = signer.Signer

/** A CESR count code. */
export type Counter = Signify.Counter
/** A CESR digest. */
export type Diger = Signify.Diger
/** An indexed signature. */
export type Siger = Signify.Siger
/** A public key. */
export type Verfer = Signify.Verfer
/** An Ed25519 signing key. */
export type Signer = Signify.Signer
