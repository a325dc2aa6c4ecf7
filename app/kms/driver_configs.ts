/*
|--------------------------------------------------------------------------
| Driver config types
|--------------------------------------------------------------------------
|
| The options config/kms.ts passes to a driver factory. Apart from
| define_config.ts so that a driver's factory module can name its options
| without importing the module that imports the factory.
|
*/

/** Options of the local driver in config/kms.ts. */
export interface LocalDriverConfig {
  /** base64 of 32 bytes (KMS_ROOT_KEY). */
  rootKey: string | undefined
  /** Table holding keyrings. */
  table?: string
}
