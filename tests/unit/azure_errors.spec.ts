import { test } from '@japa/runner'
import {
  azureRetryDecision,
  classifyAzureError,
  isDisabledKey,
  retryAfterMs,
} from '#kms/drivers/azure_errors'

/** A RestError as the SDK throws it (status, Key Vault's code, details, headers). */
function restError(
  statusCode: number | undefined,
  code?: string,
  inner?: string,
  headers: Record<string, string> = {}
) {
  return {
    name: 'RestError',
    statusCode,
    code,
    message: `${code} message`,
    details: {
      error: { code, message: `${code} message`, innerError: inner ? { code: inner } : undefined },
    },
    response: { headers: { get: (name: string) => headers[name] } },
  }
}

test.group('Key Vault errors → Rewrap codes', () => {
  test('each documented failure gets its code', ({ assert }) => {
    assert.equal(classifyAzureError(restError(404, 'KeyNotFound')), 'E_KEK_NOT_FOUND')
    assert.equal(classifyAzureError(restError(401, 'Unauthorized')), 'E_KMS_DENIED')
    assert.equal(classifyAzureError(restError(403, 'Forbidden', 'ForbiddenByRbac')), 'E_KMS_DENIED')
    assert.equal(
      classifyAzureError(restError(403, 'Forbidden', 'KeyDisabled')),
      'E_KEY_VERSION_DISALLOWED'
    )
    assert.equal(classifyAzureError(restError(429, 'Throttled')), 'E_KMS_UNAVAILABLE')
    assert.equal(classifyAzureError(restError(503, 'ServiceUnavailable')), 'E_KMS_UNAVAILABLE')
    assert.equal(
      classifyAzureError(restError(400, 'BadParameter'), 'unwrap'),
      'E_CIPHERTEXT_INVALID'
    )
    assert.equal(classifyAzureError(restError(400, 'BadParameter')), 'E_KMS_REJECTED')
    assert.equal(classifyAzureError(restError(undefined, 'ECONNREFUSED')), 'E_KMS_UNAVAILABLE')
    assert.equal(
      classifyAzureError(new Error('Operation wrapKey is not supported')),
      'E_KMS_REJECTED'
    )
    assert.isTrue(isDisabledKey(restError(403, 'Forbidden', 'KeyDisabled')))
  })

  test('retries: 429/503 always, other 5xx and lost connections only when idempotent', ({
    assert,
  }) => {
    assert.deepEqual(
      azureRetryDecision(restError(429, 'Throttled', undefined, { 'retry-after': '3' }), false),
      {
        retry: true,
        afterMs: 3000,
      }
    )
    assert.isTrue(azureRetryDecision(restError(503), false).retry)
    assert.isTrue(azureRetryDecision(restError(500), true).retry)
    assert.isFalse(azureRetryDecision(restError(500), false).retry)
    assert.isTrue(azureRetryDecision(restError(undefined, 'ECONNRESET'), true).retry)
    assert.isFalse(azureRetryDecision(restError(undefined, 'ECONNRESET'), false).retry)
    assert.isTrue(azureRetryDecision(restError(undefined, 'ECONNREFUSED'), false).retry)
    assert.isFalse(azureRetryDecision(restError(403, 'Forbidden'), true).retry)
    assert.isFalse(azureRetryDecision(restError(404, 'KeyNotFound'), true).retry)
  })

  test('Retry-After in seconds or as an HTTP date', ({ assert }) => {
    const now = Date.parse('2026-11-30T12:00:00Z')
    assert.equal(retryAfterMs(restError(429, 'T', undefined, { 'retry-after': '0' }), now), 0)
    assert.equal(
      retryAfterMs(
        restError(429, 'T', undefined, { 'retry-after': 'Mon, 30 Nov 2026 12:00:05 GMT' }),
        now
      ),
      5000
    )
    assert.isUndefined(retryAfterMs(restError(429, 'T'), now))
  })
})
