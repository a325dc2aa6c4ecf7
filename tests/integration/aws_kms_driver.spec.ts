/*
|--------------------------------------------------------------------------
| aws-kms driver: what only AWS KMS does
|--------------------------------------------------------------------------
|
| @aws-sdk/client-kms over real HTTP to the `kms:serve --api aws-kms`
| stand-in: SigV4 refusals, AWS's error shapes, throttling as pacing,
| rotate exactly once across failures, retire / trim as key states.
|
*/
import { randomBytes } from 'node:crypto'
import { test } from '@japa/runner'
import { DecryptCommand, DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms'
import { TAG_KEK } from '#kms/drivers/aws_kms_layout'
import { awsDriverFor, startAwsKmsServer, type AwsKmsFixture } from '#tests/helpers/aws_kms'
import { randomId } from '#tests/helpers/transit'

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<any> {
  const error = await promise.then(
    () => null,
    (e) => e
  )
  if (!error) throw new Error(`expected ${code}, but the call succeeded`)
  if (error.code !== code) throw new Error(`expected ${code}, got ${error.code}: ${error.message}`)
  return error
}

function keysOf(fixture: AwsKmsFixture, kek: string) {
  return [...fixture.server.model.keys.values()].filter((k) => k.tags.get(TAG_KEK) === kek)
}

function since(fixture: AwsKmsFixture, mark: number) {
  return fixture.server.requestLog.slice(mark)
}

function rawClient(fixture: AwsKmsFixture, secret = fixture.credentials.secretAccessKey) {
  return new KMSClient({
    region: fixture.region,
    endpoint: fixture.url,
    credentials: { accessKeyId: fixture.credentials.accessKeyId, secretAccessKey: secret },
    maxAttempts: 1,
  })
}

test.group('aws-kms driver over the AWS KMS stand-in', (group) => {
  let fixture: AwsKmsFixture
  const kek = (label: string) => `aws-${label}-${randomId()}`

  group.setup(async () => {
    fixture = await startAwsKmsServer()
    return () => fixture.close()
  })
  group.each.teardown(() => fixture.server.clearFaults())

  test('a wrong secret is InvalidSignatureException on the wire, E_KMS_DENIED, not retried', async ({
    assert,
  }) => {
    const { driver, retryDeps } = awsDriverFor({
      ...fixture,
      credentials: { ...fixture.credentials, secretAccessKey: randomBytes(30).toString('base64') },
    })
    const mark = fixture.server.requestLog.length
    const error = await rejectsWith(driver.readKey(kek('denied')), 'E_KMS_DENIED')
    assert.notInclude(error.message, fixture.credentials.secretAccessKey)
    assert.deepEqual(since(fixture, mark), [
      { operation: 'ListAliases', status: 400, errorType: 'InvalidSignatureException' },
    ])
    assert.lengthOf(retryDeps.sleeps, 0)

    const raw = await rawClient(fixture, 'wrong')
      .send(new DescribeKeyCommand({ KeyId: 'alias/x' }))
      .catch((e) => e)
    assert.equal(raw.name, 'InvalidSignatureException')
    assert.equal(raw.$metadata.httpStatusCode, 400)
    assert.match(raw.message, /^The request signature we calculated does not match/)
  })

  test('an unknown access key is UnrecognizedClientException; no signature is refused', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor({
      ...fixture,
      credentials: { ...fixture.credentials, accessKeyId: 'AKIAUNKNOWNKEY000000' },
    })
    await rejectsWith(driver.listKeys(), 'E_KMS_DENIED')
    assert.deepEqual(fixture.server.requestLog.at(-1), {
      operation: 'ListAliases',
      status: 400,
      errorType: 'UnrecognizedClientException',
    })
    const unsigned = await fetch(fixture.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TrentService.ListKeys',
      },
      body: '{}',
    })
    assert.equal(unsigned.status, 403)
    assert.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException')
    assert.deepEqual(await unsigned.json(), {
      __type: 'MissingAuthenticationTokenException',
      message: 'Missing Authentication Token',
    })
  })

  test("errors come in AWS's shapes: __type, message and x-amzn-ErrorType", async ({ assert }) => {
    const client = rawClient(fixture)
    const missing = await client
      .send(new DescribeKeyCommand({ KeyId: 'alias/none-here' }))
      .catch((e) => e)
    assert.equal(missing.name, 'NotFoundException')
    assert.equal(missing.$metadata.httpStatusCode, 400)
    assert.match(
      missing.message,
      /^Alias arn:aws:kms:eu-west-1:\d{12}:alias\/none-here is not found\.$/
    )

    const { driver } = awsDriverFor(fixture)
    const name = kek('context')
    await driver.createKey(name)
    const [wrapped] = await driver.wrap(name, [randomBytes(32)])
    // The encryption context binds the DEK to its KEK: another name does not decrypt.
    const blob = Buffer.from(wrapped.split(':')[2], 'base64')
    const wrongContext = await client
      .send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { 'rewrap:kek': 'x' } }))
      .catch((e) => e)
    assert.equal(wrongContext.name, 'InvalidCiphertextException')
    client.destroy()
  })

  test('ThrottlingException is paced with jittered backoff until it succeeds', async ({
    assert,
  }) => {
    const { driver, retryDeps } = awsDriverFor(fixture, {
      retry: { maxAttempts: 6, baseDelayMs: 20, maxDelayMs: 1_000 },
      concurrency: 1,
    })
    const name = kek('throttle')
    await driver.createKey(name)
    const input = [randomBytes(32), randomBytes(32)]
    const wrapped = await driver.wrap(name, input)
    await driver.rotateKey(name)
    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults(
      Array.from({ length: 3 }, () => ({ type: 'ThrottlingException', operation: 'ReEncrypt' }))
    )
    const results = await driver.rewrap(name, wrapped)
    assert.deepEqual(
      results.map((r) => r.ok && r.version),
      [2, 2]
    )
    const reEncrypts = since(fixture, mark).filter((e) => e.operation === 'ReEncrypt')
    assert.deepEqual(
      reEncrypts.map((e) => e.errorType ?? e.status),
      ['ThrottlingException', 'ThrottlingException', 'ThrottlingException', 200, 200]
    )
    // Full jitter (random 0.5) under a doubling ceiling: 10, 20, 40 ms.
    assert.deepEqual(retryDeps.sleeps, [10, 20, 40])
    const reopened = await driver.unwrap(
      name,
      results.map((r) => (r.ok ? r.wrapped : ''))
    )
    assert.deepEqual(
      reopened.map((b) => b.toString('hex')),
      input.map((b) => b.toString('hex'))
    )
  })

  test('throttling beyond the retry budget fails the call (E_KMS_UNAVAILABLE), not the rows', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor(fixture, {
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 10 },
    })
    const name = kek('throttle-out')
    await driver.createKey(name)
    const wrapped = await driver.wrap(name, [randomBytes(32)])
    fixture.server.injectFaults(
      Array.from({ length: 3 }, () => ({ type: 'ThrottlingException', operation: 'ReEncrypt' }))
    )
    const mark = fixture.server.requestLog.length
    await rejectsWith(driver.rewrap(name, wrapped), 'E_KMS_UNAVAILABLE')
    assert.deepEqual(
      since(fixture, mark).map((e) => e.errorType ?? e.status),
      [200, 200, 200, 'ThrottlingException', 'ThrottlingException', 'ThrottlingException']
    )
  })

  test('a dropped connection during rewrap is retried, then E_KMS_UNAVAILABLE for the call', async ({
    assert,
  }) => {
    const { driver, retryDeps } = awsDriverFor(fixture, { concurrency: 1 })
    const name = kek('drop')
    await driver.createKey(name)
    const wrapped = await driver.wrap(name, [randomBytes(32), randomBytes(32)])
    fixture.server.injectFaults([{ type: 'x', drop: true, operation: 'ReEncrypt' }])
    const healed = await driver.rewrap(name, wrapped)
    assert.isTrue(healed.every((r) => r.ok))
    assert.lengthOf(retryDeps.sleeps, 1)
    fixture.server.injectFaults(
      Array.from({ length: 4 }, () => ({ type: 'x', drop: true, operation: 'ReEncrypt' }))
    )
    const error = await rejectsWith(driver.rewrap(name, wrapped), 'E_KMS_UNAVAILABLE')
    assert.match(error.message, /KMS/)
  })

  test('CreateKey is not retried after a 500; the next rotate still adds exactly one version', async ({
    assert,
  }) => {
    const { driver, retryDeps } = awsDriverFor(fixture)
    const name = kek('create500')
    await driver.createKey(name)
    const mark = fixture.server.requestLog.length
    fixture.server.injectFaults([{ type: 'KMSInternalException', operation: 'CreateKey' }])
    await rejectsWith(driver.rotateKey(name), 'E_KMS_UNAVAILABLE')
    assert.lengthOf(
      since(fixture, mark).filter((e) => e.operation === 'CreateKey'),
      1
    )
    assert.lengthOf(retryDeps.sleeps, 0)
    const info = await driver.rotateKey(name)
    assert.equal(info.latestVersion, 2)
    assert.lengthOf(keysOf(fixture, name), 2)
  })

  test('rotate that failed after CreateKey reuses that key: one KMS key per version', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor(fixture, {
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    })
    const name = kek('orphan')
    await driver.createKey(name)
    fixture.server.injectFaults([
      { type: 'KMSInternalException', operation: 'CreateAlias' },
      { type: 'KMSInternalException', operation: 'CreateAlias' },
    ])
    await rejectsWith(driver.rotateKey(name), 'E_KMS_UNAVAILABLE')
    assert.equal((await driver.readKey(name))!.latestVersion, 1, 'not committed')
    assert.lengthOf(keysOf(fixture, name), 2, 'the failed attempt made its key')

    const mark = fixture.server.requestLog.length
    const info = await driver.rotateKey(name)
    assert.equal(info.latestVersion, 2)
    assert.lengthOf(keysOf(fixture, name), 2, 'no second key for version 2')
    const ops = since(fixture, mark).map((e) => e.operation)
    assert.notInclude(ops, 'CreateKey')
    assert.include(ops, 'ListKeys', 'found by its tags')
    const [wrapped] = await driver.wrap(name, [randomBytes(32)])
    assert.match(wrapped, /^aws:v2:/)
    const again = await driver.rotateKey(name)
    assert.equal(again.latestVersion, 3)
    assert.lengthOf(keysOf(fixture, name), 3)
  })

  test('rotate that failed before its commit (UpdateAlias) is finished, not repeated', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor(fixture, {
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 5 },
    })
    const name = kek('commit')
    await driver.createKey(name)
    fixture.server.injectFaults([{ type: 'KMSInternalException', operation: 'UpdateAlias' }])
    await rejectsWith(driver.rotateKey(name), 'E_KMS_UNAVAILABLE')
    const before = await driver.readKey(name)
    assert.equal(before!.latestVersion, 1)
    assert.deepEqual(
      before!.versions.map((v) => v.version),
      [1]
    )
    const mark = fixture.server.requestLog.length
    const info = await driver.rotateKey(name)
    assert.equal(info.latestVersion, 2)
    assert.lengthOf(keysOf(fixture, name), 2)
    const ops = since(fixture, mark).map((e) => e.operation)
    assert.notInclude(ops, 'CreateKey')
    assert.notInclude(ops, 'ListKeys')
  })

  test('retire disables old version keys, unretire enables them, trim schedules deletion', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor(fixture, { pendingWindowInDays: 7 })
    const name = kek('states')
    await driver.createKey(name)
    await driver.rotateKey(name)
    await driver.rotateKey(name)
    const state = (version: number) =>
      keysOf(fixture, name).find((k) => k.tags.get('rewrap:version') === String(version))!

    await driver.configureKey(name, { minDecryptionVersion: 3 })
    assert.deepEqual(
      [1, 2, 3].map((v) => state(v).state),
      ['Disabled', 'Disabled', 'Enabled']
    )
    await driver.configureKey(name, { minDecryptionVersion: 2 })
    assert.deepEqual(
      [1, 2, 3].map((v) => state(v).state),
      ['Disabled', 'Enabled', 'Enabled']
    )

    await driver.configureKey(name, { minEncryptionVersion: 2 })
    const trimmed = await driver.trimKey(name, 2)
    assert.equal(trimmed.minAvailableVersion, 2)
    assert.equal(state(1).state, 'PendingDeletion')
    assert.equal(state(1).pendingWindowInDays, 7)
    assert.equal(state(2).state, 'Enabled')
    // min_encryption_version survives a rotation (the tag moves to the new key).
    const rotated = await driver.rotateKey(name)
    assert.equal(rotated.minEncryptionVersion, 2)
    assert.equal(rotated.minAvailableVersion, 2)
  })

  test('unwrap of a known KEK costs one Decrypt per DEK, nothing else', async ({ assert }) => {
    const { driver } = awsDriverFor(fixture)
    const name = kek('unwrap-cost')
    await driver.createKey(name)
    const input = [randomBytes(32), randomBytes(32), randomBytes(32)]
    const wrapped = await driver.wrap(name, input)
    await driver.unwrap(name, wrapped.slice(0, 1))
    const mark = fixture.server.requestLog.length
    const opened = await driver.unwrap(name, wrapped)
    assert.deepEqual(
      opened.map((b) => b.toString('hex')),
      input.map((b) => b.toString('hex'))
    )
    assert.deepEqual(
      since(fixture, mark).map((e) => e.operation),
      ['Decrypt', 'Decrypt', 'Decrypt']
    )
    // Retired by another process: AWS refuses the Disabled key, no stale grant.
    const other = awsDriverFor(fixture).driver
    await other.rotateKey(name)
    await other.configureKey(name, { minDecryptionVersion: 2 })
    await rejectsWith(driver.unwrap(name, wrapped), 'E_KEY_VERSION_DISALLOWED')
    await other.close()
  })

  test('no batch API: at most `concurrency` requests in flight (injected latency)', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor(fixture, { concurrency: 4 })
    const name = kek('inflight')
    await driver.createKey(name)
    const input = Array.from({ length: 24 }, () => randomBytes(32))
    const wrapped = await driver.wrap(name, input)
    await driver.rotateKey(name)
    fixture.server.setLatency(40)
    fixture.server.resetPeakInFlight()
    const results = await driver.rewrap(name, wrapped)
    assert.isTrue(results.every((r) => r.ok))
    assert.isAtMost(fixture.server.peakInFlight, 4)
    assert.isAtLeast(fixture.server.peakInFlight, 2, 'calls overlap')
  })

  test('the requests/s ceiling holds across concurrent calls', async ({ assert }) => {
    const { driver } = awsDriverFor(fixture, { concurrency: 16, requestsPerSecond: 50 })
    const name = kek('ceiling')
    const mark = fixture.server.requestLog.length
    const started = performance.now()
    await driver.createKey(name)
    await Promise.all([
      driver.wrap(
        name,
        Array.from({ length: 20 }, () => randomBytes(32))
      ),
      driver.wrap(
        name,
        Array.from({ length: 20 }, () => randomBytes(32))
      ),
    ])
    const elapsed = performance.now() - started
    const requests = fixture.server.requestLog.length - mark
    assert.isAtLeast(requests, 47)
    // A burst of 5 (a tenth of a second's worth), then 50/s: never faster than that.
    assert.isAtLeast(elapsed, ((requests - 5) / 50) * 1000 - 20)
  })

  test('a stand-in that is down is E_KMS_UNAVAILABLE after bounded retries', async ({ assert }) => {
    const gone = await startAwsKmsServer()
    await gone.close()
    const { driver, retryDeps } = awsDriverFor(gone)
    await rejectsWith(driver.readKey(kek('down')), 'E_KMS_UNAVAILABLE')
    assert.lengthOf(retryDeps.sleeps, 3, 'maxAttempts 4')
    await driver.close()
  })

  test('listKeys names KEKs by their aliases; KEK names with . and _ round-trip', async ({
    assert,
  }) => {
    const { driver } = awsDriverFor(fixture)
    const suffix = randomId()
    const names = [`aws.dotted_${suffix}`, `aws_under.${suffix}`]
    for (const name of names) await driver.createKey(name)
    const listed = await driver.listKeys()
    for (const name of names) assert.include(listed, name)
    assert.include([...fixture.server.model.aliases.keys()], `alias/aws_2Edotted_5F${suffix}`)
    const info = await driver.readKey(names[0])
    assert.equal(info!.name, names[0])
  })
})
