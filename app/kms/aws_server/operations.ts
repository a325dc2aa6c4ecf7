/*
|--------------------------------------------------------------------------
| Every operation of the AWS KMS stand-in, by X-Amz-Target suffix
|--------------------------------------------------------------------------
*/
import { cryptoOperations } from '#kms/aws_server/crypto_operations'
import { keyOperations, type Operation } from '#kms/aws_server/key_operations'

/** The operations, by X-Amz-Target suffix (`TrentService.<Op>`). */
export const operations: Record<string, Operation> = { ...keyOperations, ...cryptoOperations }
