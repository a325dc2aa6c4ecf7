/*
|--------------------------------------------------------------------------
| Schema SAIDs
|--------------------------------------------------------------------------
|
| The schemas are committed JSON files whose `$id` is their own SAID (the
| ACDC / keripy `Schemer` convention, as GLEIF's vLEI schemas). The SAIDs
| below are fixed: a test recomputes them from the files, so editing a
| schema without a new SAID fails the build.
|
*/
import roleCredentialSchema from './schemas/role_credential.json' with { type: 'json' }
import auditRecordSchema from './schemas/audit_record.json' with { type: 'json' }

/** SAID of schemas/role_credential.json. */
export const ROLE_CREDENTIAL_SCHEMA_SAID = 'EDwYrmMs81U-nql5gmhmi-fhowNbeR6iwjz0c16MD3yL'

/** SAID of schemas/audit_record.json. */
export const AUDIT_RECORD_SCHEMA_SAID = 'EBUOWO4vqWa73KRuX1Kr7zFX-M708Fp4FKlH5pnhBrfW'

/** The committed schema documents, by SAID (for exports and auditors). */
export const SCHEMAS: Readonly<Record<string, unknown>> = {
  [ROLE_CREDENTIAL_SCHEMA_SAID]: roleCredentialSchema,
  [AUDIT_RECORD_SCHEMA_SAID]: auditRecordSchema,
}
