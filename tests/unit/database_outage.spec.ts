import { test } from '@japa/runner'
import { E_LOCK_LOST, E_KMS_UNAVAILABLE } from '#app/errors'
import { renderError } from '#exceptions/handler'
import {
  asRunError,
  isDatabaseUnavailable,
  isRecoverableRunFailure,
} from '#services/database_outage'

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code })

test.group('database outages: which errors a run rides through', () => {
  test('connection loss, shutdown and refused connections are outages', ({ assert }) => {
    for (const code of ['57P01', '57P02', '57P03', '08006', '08001', '53300', 'ECONNREFUSED']) {
      assert.isTrue(isDatabaseUnavailable(withCode(code)), code)
    }
    assert.isTrue(isDatabaseUnavailable(new Error('Connection terminated unexpectedly')))
    assert.isTrue(
      isDatabaseUnavailable(new AggregateError([withCode('ECONNREFUSED')], 'connect failed'))
    )
  })

  test('query errors, constraint violations and other failures are not', ({ assert }) => {
    for (const code of ['23505', '42P01', '40001', 'E_KEK_NOT_FOUND']) {
      assert.isFalse(isDatabaseUnavailable(withCode(code)), code)
    }
    assert.isFalse(isDatabaseUnavailable(new TypeError('Connection terminated? no: a bug')))
    assert.isFalse(isDatabaseUnavailable(new E_KMS_UNAVAILABLE()))
    assert.isFalse(isDatabaseUnavailable(null))
  })

  test('a lost lock is recoverable too; outages become E_DATABASE_UNAVAILABLE', ({ assert }) => {
    assert.isTrue(isRecoverableRunFailure(new E_LOCK_LOST([])))
    const converted = asRunError(withCode('57P01', 'terminating connection')) as any
    assert.equal(converted.code, 'E_DATABASE_UNAVAILABLE')
    assert.notInclude(converted.message, 'terminating')
    const other = withCode('23505')
    assert.strictEqual(asRunError(other), other)
  })

  test('over HTTP an outage is 503 E_DATABASE_UNAVAILABLE with a fixed message', ({ assert }) => {
    const rendered = renderError(withCode('57P01', 'terminating connection host=db-7.internal'))
    assert.deepEqual(rendered, {
      status: 503,
      errors: [
        { code: 'E_DATABASE_UNAVAILABLE', message: 'The database is unavailable; try again later' },
      ],
    })
    assert.equal(renderError(withCode('23505', 'duplicate key')).status, 500)
  })
})
