import { test } from '@japa/runner'
import {
  SIGNATURE_MISMATCH,
  UNKNOWN_ACCESS_KEY,
  verifySigv4,
  type SignedRequest,
} from '#kms/aws_server/sigv4'

/** AWS's SigV4 test suite credentials and clock (aws-sig-v4-test-suite). */
const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
}
const SIGNED_AT = Date.UTC(2015, 7, 30, 12, 36, 0)
const SCOPE = 'AKIDEXAMPLE/20150830/us-east-1/service/aws4_request'

function vector(url: string, signature: string, extra: Partial<SignedRequest> = {}): SignedRequest {
  return {
    method: 'GET',
    url,
    headers: {
      'host': 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      'authorization': `AWS4-HMAC-SHA256 Credential=${SCOPE}, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    },
    body: Buffer.alloc(0),
    ...extra,
  }
}

const GET_VANILLA = '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'
const QUERY_ORDER = 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500'

test.group('SigV4 verification (AWS test suite vectors)', () => {
  test('get-vanilla verifies', ({ assert }) => {
    const result = verifySigv4(vector('/', GET_VANILLA), CREDENTIALS, 'service', SIGNED_AT)
    assert.deepEqual(result, { ok: true, accessKeyId: 'AKIDEXAMPLE', region: 'us-east-1' })
  })

  test('get-vanilla-query-order-key-case: the query is sorted before hashing', ({ assert }) => {
    const result = verifySigv4(
      vector('/?Param2=value2&Param1=value1', QUERY_ORDER),
      CREDENTIALS,
      'service',
      SIGNED_AT
    )
    assert.isTrue(result.ok)
  })

  test('a changed method, path, query, header or body is InvalidSignatureException', ({
    assert,
  }) => {
    const tampered: SignedRequest[] = [
      { ...vector('/', GET_VANILLA), method: 'POST' },
      vector('/x', GET_VANILLA),
      vector('/?a=b', GET_VANILLA),
      { ...vector('/', GET_VANILLA), body: Buffer.from('{}') },
      vector('/', GET_VANILLA.replace(/^5/, '6')),
    ]
    const host = vector('/', GET_VANILLA)
    host.headers.host = 'example.amazonaws.com:444'
    tampered.push(host)
    for (const request of tampered) {
      const result = verifySigv4(request, CREDENTIALS, 'service', SIGNED_AT)
      assert.deepEqual(result, {
        ok: false,
        type: 'InvalidSignatureException',
        message: SIGNATURE_MISMATCH,
      })
    }
  })

  test('a body that does not match its declared x-amz-content-sha256 is refused', ({ assert }) => {
    const emptyHash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    const request = vector('/', GET_VANILLA, { body: Buffer.from('{"Plaintext":"tampered"}') })
    request.headers['x-amz-content-sha256'] = emptyHash
    const result = verifySigv4(request, CREDENTIALS, 'service', SIGNED_AT)
    assert.equal(!result.ok && result.type, 'InvalidSignatureException')
    // The same header on the body it describes: the body is what is hashed.
    const honest = vector('/', GET_VANILLA)
    honest.headers['x-amz-content-sha256'] = emptyHash
    assert.isTrue(verifySigv4(honest, CREDENTIALS, 'service', SIGNED_AT).ok)
  })

  test('the wrong secret fails; an unknown access key is UnrecognizedClientException', ({
    assert,
  }) => {
    const wrongSecret = { ...CREDENTIALS, secretAccessKey: `${CREDENTIALS.secretAccessKey}x` }
    const bad = verifySigv4(vector('/', GET_VANILLA), wrongSecret, 'service', SIGNED_AT)
    assert.equal(!bad.ok && bad.type, 'InvalidSignatureException')
    const other = { ...CREDENTIALS, accessKeyId: 'AKIDOTHER' }
    const unknown = verifySigv4(vector('/', GET_VANILLA), other, 'service', SIGNED_AT)
    assert.deepEqual(unknown, {
      ok: false,
      type: 'UnrecognizedClientException',
      message: UNKNOWN_ACCESS_KEY,
    })
  })

  test('no Authorization, another service, or a stale date are refused', ({ assert }) => {
    const none = vector('/', GET_VANILLA)
    delete none.headers.authorization
    const missing = verifySigv4(none, CREDENTIALS, 'service', SIGNED_AT)
    assert.equal(!missing.ok && missing.type, 'MissingAuthenticationTokenException')
    const wrongService = verifySigv4(vector('/', GET_VANILLA), CREDENTIALS, 'kms', SIGNED_AT)
    assert.equal(!wrongService.ok && wrongService.type, 'InvalidSignatureException')
    const late = verifySigv4(
      vector('/', GET_VANILLA),
      CREDENTIALS,
      'service',
      SIGNED_AT + 6 * 60_000
    )
    assert.equal(!late.ok && late.type, 'InvalidSignatureException')
    assert.match(!late.ok ? late.message : '', /^Signature expired/)
    const withinSkew = verifySigv4(
      vector('/', GET_VANILLA),
      CREDENTIALS,
      'service',
      SIGNED_AT + 4 * 60_000
    )
    assert.isTrue(withinSkew.ok)
  })
})
