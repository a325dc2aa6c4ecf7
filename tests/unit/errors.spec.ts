import { test } from '@japa/runner'
import { E_KEK_NOT_FOUND, E_TIMEOUT, errorCode, safeMessage } from '#app/errors'
import { kmsDetailOf, kmsError } from '#kms/error_codes'

const DETAIL = 'pq: password authentication failed for user "vault" host=db-7.internal'

test.group('errors: one vocabulary', () => {
  test('errorCode: an E_* code as is, anything else E_INTERNAL', ({ assert }) => {
    assert.equal(errorCode(new E_KEK_NOT_FOUND(['orders'])), 'E_KEK_NOT_FOUND')
    assert.equal(errorCode({ code: 'E_VALIDATION_ERROR' }), 'E_VALIDATION_ERROR')
    assert.equal(errorCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'E_INTERNAL')
    assert.equal(errorCode({ code: 'E_lower case' }), 'E_INTERNAL')
    assert.equal(errorCode(new TypeError('x')), 'E_INTERNAL')
    assert.equal(errorCode(null), 'E_INTERNAL')
    assert.equal(errorCode('E_STRING'), 'E_INTERNAL')
  })

  test('safeMessage: CODE: message for E_* errors; code or class only otherwise', ({ assert }) => {
    assert.equal(
      safeMessage(new E_KEK_NOT_FOUND(['orders'])),
      'E_KEK_NOT_FOUND: KEK "orders" does not exist'
    )
    assert.equal(
      safeMessage(new E_TIMEOUT(['KMS call', 5000])),
      'E_TIMEOUT: KMS call timed out after 5000 ms'
    )
    const system = Object.assign(new Error(`connect to ${DETAIL}`), { code: 'ECONNREFUSED' })
    assert.equal(safeMessage(system), 'E_INTERNAL (ECONNREFUSED)')
    assert.equal(safeMessage(new TypeError(DETAIL)), 'E_INTERNAL (TypeError)')
    assert.equal(safeMessage(undefined), 'E_INTERNAL')
  })

  test('KMS errors: a fixed message per code; the detail only as a non-enumerable cause', ({
    assert,
  }) => {
    const expected = {
      E_KMS_UNAVAILABLE: 'The KMS is unavailable; try again later',
      E_KMS_REJECTED: 'The KMS rejected the request',
      E_KMS_DENIED: "The KMS denied the request (permissions of the app's KMS identity)",
      E_KEY_VERSION_DISALLOWED: 'The key version is not allowed (retired or trimmed)',
      E_CIPHERTEXT_INVALID: 'Ciphertext is invalid: the KMS could not unwrap the data key',
      E_KEK_NOT_FOUND: 'KEK "orders" does not exist',
    } as const
    for (const [code, message] of Object.entries(expected)) {
      const error = kmsError(code as keyof typeof expected, DETAIL, 'orders')
      assert.equal(errorCode(error), code)
      assert.equal(safeMessage(error), `${code}: ${message}`)
      assert.notInclude(JSON.stringify(error), 'db-7.internal')
      assert.notInclude(String(error), 'db-7.internal')
      assert.equal(kmsDetailOf(error), DETAIL)
    }
    assert.isUndefined(kmsDetailOf(new Error('x')))
  })
})
