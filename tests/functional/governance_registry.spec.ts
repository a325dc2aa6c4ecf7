import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from '@japa/runner'
import app from '@adonisjs/core/services/app'
import db from '@adonisjs/lucid/services/db'
import env from '#start/env'
import { ready, Signer } from 'signify-ts'
import { encodeMessage } from '#app/governance/cesr_stream'
import { issueRoleCredential } from '#app/governance/credentials'
import { makeRotation } from '#app/governance/key_event_builders'
import { nextKeyDigest } from '#app/governance/key_events'
import { decodeKeystore } from '#app/governance/keystore'
import { serialize } from '#app/governance/said'
import { signIndexed } from '#app/governance/signatures'
import { ApproverService } from '#services/approver_service'
import { CredentialService } from '#services/credential_service'
import { runAce } from '#tests/helpers/ace'
import { createToken } from '#tests/helpers/auth'
import { makeAid, rotateAid, seedSigner, type TestAid } from '#tests/helpers/governance'
import { assertAuditChainIntact, auditRecordsOf } from '#tests/helpers/governance_fixture'
import { rememberSecret } from '#tests/helpers/secrets'

/*
| Approvers and role credentials (issue 12 items 1-2): the approver:* and
| credential:* commands through the real Ace kernel, POST/GET /approvers,
| against the run's Postgres and the real signify-ts primitives.
*/

await ready()

const PASSPHRASE = `correct horse ${randomBytes(6).toString('hex')}`
rememberSecret(PASSPHRASE, 'keystore passphrase')

let dir = ''
async function tempDir() {
  dir ||= await mkdtemp(join(tmpdir(), 'rewrap-gov-'))
  return dir
}

/** Runs a command; fails the test with its lines unless the exit code is `expected`. */
async function ace(name: string, argv: string[], expected = 0) {
  const previous = env.get('REWRAP_KEYSTORE_PASSPHRASE')
  env.set('REWRAP_KEYSTORE_PASSPHRASE', PASSPHRASE)
  try {
    const run = await runAce(name, argv)
    if ((run.exitCode ?? 0) !== expected) {
      throw new Error(`${name} exited ${run.exitCode}: ${run.all.join('\n')}`)
    }
    return run
  } finally {
    env.set('REWRAP_KEYSTORE_PASSPHRASE', previous as any)
    if (previous === undefined) delete process.env.REWRAP_KEYSTORE_PASSPHRASE
  }
}

/** approver:init + approver:register; remembers the seeds as secrets. */
async function newApprover(name: string, authority = false) {
  const keystore = join(await tempDir(), `${name}-${randomBytes(3).toString('hex')}.keystore`)
  const init = await ace('approver:init', ['--name', name, '--keystore', keystore, '--json'])
  const secrets = decodeKeystore(await readFile(keystore, 'utf8'), PASSPHRASE)
  for (const seed of [...secrets.current, ...secrets.next]) rememberSeed(seed)
  const registered = await ace('approver:register', [
    `${keystore}.icp.json`,
    ...(authority ? ['--authority'] : []),
    '--json',
  ])
  return { keystore, aid: init.json.aid as string, init, registered: registered.json }
}

/** A seed as raw bytes (every encoding) and as its qb64 Signer text. */
function rememberSeed(seed: Uint8Array) {
  rememberSecret(Buffer.from(seed), 'approver seed')
  rememberSecret(new Signer({ raw: seed, transferable: true }).qb64, 'approver seed (qb64)')
}

function errorLineOf(run: { all: string[] }) {
  assertOneLine(run.all)
  // The raw (test) UI tags the logger's error line; the text after it is what users see.
  return run.all[0].replace(/^\[ red\(error\) \] /, '')
}
function assertOneLine(lines: string[]) {
  if (lines.length !== 1) throw new Error(`expected one line, got:\n${lines.join('\n')}`)
}

async function modeOf(file: string) {
  const info = await stat(file)
  return info.mode & 0o777
}

async function snOf(approvers: ApproverService, aid: string) {
  const state = await approvers.keyState(aid)
  return state.sn
}

/** The `E_` code a promise rejects with. */
async function codeOf(promise: Promise<unknown>) {
  const error = await promise.then(
    () => null,
    (caught) => caught
  )
  return (error as { code?: string } | null)?.code
}

async function registerAid(aid: TestAid, authority = false) {
  const approvers = await app.container.make(ApproverService)
  return approvers.register({
    name: `fixed-${aid.state.aid.slice(0, 6)}`,
    inception: encodeMessage(aid.kel[0]),
    authority,
  })
}

test.group('governance / approvers', () => {
  test('approver:init → register → rotate (twice): accepted, the KEL replays to the new keys', async ({
    assert,
  }) => {
    const alice = await newApprover('alice')
    assert.match(alice.aid, /^E[A-Za-z0-9_-]{43}$/)
    assert.property(alice.init.json, 'inception')
    assert.equal(alice.registered.aid, alice.aid)
    assert.isTrue(alice.registered.created)
    assert.equal(alice.registered.sn, 0)
    const mode = await modeOf(alice.keystore)
    assert.equal(mode, 0o600, 'keystore is readable by its owner only')

    const first = await ace('approver:rotate', ['--keystore', alice.keystore, '--json'])
    assert.equal(first.json.sn, 1)
    assert.notDeepEqual(first.json.keys, alice.registered.keys)
    assert.equal(await modeOf(alice.keystore), 0o600, 'the replaced keystore is 0600 too')
    const second = await ace('approver:rotate', ['--keystore', alice.keystore, '--json'])
    assert.equal(second.json.sn, 2)
    const secrets = decodeKeystore(await readFile(alice.keystore, 'utf8'), PASSPHRASE)
    for (const seed of secrets.next) rememberSeed(seed)

    const service = await app.container.make(ApproverService)
    const state = await service.keyState(alice.aid)
    assert.equal(state.sn, 2)
    assert.deepEqual(state.keys, second.json.keys)
    assert.deepEqual(state.keys, [
      new Signer({ raw: secrets.current[0], transferable: true }).verfer.qb64,
    ])

    // The same inception again is a no-op; with another authority flag it is refused.
    const again = await ace('approver:register', [`${alice.keystore}.icp.json`, '--json'])
    assert.isFalse(again.json.created)
    assert.equal(again.json.sn, 2)
    const promote = await ace('approver:register', [`${alice.keystore}.icp.json`, '--authority'], 1)
    assert.match(errorLineOf(promote), /^E_APPROVER_EXISTS: /)

    // One audit record per change (the no-op and the refusal change nothing): who, which AID
    // and events; public identifiers only.
    const actor = process.env.USER ?? 'cli'
    const registered = await auditRecordsOf('approver.register', 'aid', alice.aid)
    assert.lengthOf(registered, 1)
    assert.include(registered[0], { actor, outcome: 'done' })
    assert.include(registered[0].data, { aid: alice.aid, inception: alice.aid, authority: false })
    const rotations = await auditRecordsOf('approver.rotate', 'aid', alice.aid)
    assert.deepEqual(
      rotations.map((r) => [r.actor, r.data.sn, r.approvals]),
      [
        [actor, 1, null],
        [actor, 2, null],
      ]
    )
    const kel = await db.from('key_events').where('aid', alice.aid).orderBy('sn')
    assert.deepEqual(
      rotations.map((r) => r.data.event),
      kel.slice(1).map((row) => row.said)
    )
    await assertAuditChainIntact(assert)
  })

  test('a rotation to keys the inception did not commit to is refused; so is a replayed one', async ({
    assert,
  }) => {
    const aid = makeAid(0x31, 0x32)
    await registerAid(aid)
    const approvers = await app.container.make(ApproverService)
    // Signed by a key whose digest is not the committed next digest.
    const rogue = [seedSigner(0x39)]
    const event = makeRotation(aid.state, {
      keys: rogue.map((s) => s.verfer.qb64),
      nextDigests: [nextKeyDigest(seedSigner(0x3a).verfer.qb64)],
    })
    const forged = encodeMessage({ event, sigs: signIndexed(serialize(event).raw, rogue) })
    await assert.rejects(() => approvers.rotate(forged), /committed next-key digests/)
    assert.equal(await snOf(approvers, aid.state.aid), 0, 'KEL unchanged')

    const rotated = rotateAid(aid, 0x33)
    const good = encodeMessage(rotated.kel[1])
    const accepted = await approvers.rotate(good)
    assert.equal(accepted.sn, 1)
    const replay = await approvers.rotate(good).catch((error) => error)
    assert.equal(replay.code, 'E_KEY_EVENT_INVALID')
    assert.equal(await snOf(approvers, aid.state.aid), 1)

    const stranger = rotateAid(makeAid(0x41, 0x42), 0x43)
    const unknown = await approvers.rotate(encodeMessage(stranger.kel[1])).catch((e) => e)
    assert.equal(unknown.code, 'E_APPROVER_UNKNOWN')
  })

  test('a tampered inception is refused (approver:register and POST /approvers), nothing stored', async ({
    assert,
    client,
  }) => {
    const bob = await newApprover('bob-tamper-src')
    const file = JSON.parse(await readFile(`${bob.keystore}.icp.json`, 'utf8'))
    // Another next-key digest: the SAID (the AID) no longer matches the event.
    const original = file.inception as string
    const digest = /"n":\["(E[^"]+)"\]/.exec(original)![1]
    const other = nextKeyDigest(seedSigner(0x55).verfer.qb64)
    const tampered = { ...file, inception: original.replace(digest, other) }
    const path = join(await tempDir(), 'tampered.icp.json')
    await writeFile(path, JSON.stringify(tampered))
    const run = await ace('approver:register', [path], 1)
    assert.match(errorLineOf(run), /^E_SAID_INVALID: /)

    // A valid event with a signature from another key.
    const resigned = makeAid(0x61, 0x62)
    const { event } = resigned.kel[0]
    const badSig = encodeMessage({
      event,
      sigs: signIndexed(serialize(event).raw, [seedSigner(0x63)]),
    })
    const admin = await createToken(['governance:admin'])
    const response = await client
      .post('/approvers')
      .bearerToken(admin)
      .json({ name: 'mallory', inception: badSig })
    response.assertStatus(403)
    assert.equal(response.body().errors[0].code, 'E_SIGNATURE_INVALID')
    const stored = await db
      .from('approvers')
      .where('aid', event.i as string)
      .first()
    assert.isNull(stored)
  })

  test('POST /approvers registers (201, then 200), GET /approvers lists; governance:admin only', async ({
    assert,
    client,
  }) => {
    const carol = makeAid(0x71, 0x72)
    const body = { name: 'carol', inception: encodeMessage(carol.kel[0]) }
    const admin = await createToken(['governance:admin'])
    const rotationAdmin = await createToken(['rotation:admin', 'rotation:read'])

    const refused = await client.post('/approvers').bearerToken(rotationAdmin).json(body)
    refused.assertStatus(403)
    const created = await client.post('/approvers').bearerToken(admin).json(body)
    created.assertStatus(201)
    assert.include(created.body(), { aid: carol.state.aid, name: 'carol', authority: false, sn: 0 })
    const again = await client.post('/approvers').bearerToken(admin).json(body)
    again.assertStatus(200)
    assert.isFalse(again.body().created)

    const list = await client.get('/approvers').bearerToken(admin)
    list.assertStatus(200)
    const row = list.body().data.find((a: { aid: string }) => a.aid === carol.state.aid)
    assert.deepEqual(row.keys, carol.state.keys)
    const listRefused = await client.get('/approvers').bearerToken(rotationAdmin)
    listRefused.assertStatus(403)

    const bad = await client.post('/approvers').bearerToken(admin).json({ name: 'x' })
    bad.assertStatus(422)
    assert.equal(bad.body().errors[0].code, 'E_VALIDATION_ERROR')
    const junk = await client
      .post('/approvers')
      .bearerToken(admin)
      .json({ name: 'x', inception: 'nope' })
    junk.assertStatus(422)
    assert.equal(junk.body().errors[0].code, 'E_KEY_EVENT_INVALID')
  })
})

test.group('governance / role credentials', () => {
  test('credential:issue → register → revoke; a revoked credential stays revoked', async ({
    assert,
  }) => {
    const authority = await newApprover('authority', true)
    assert.isTrue(authority.registered.authority)
    const dave = await newApprover('dave')
    const out = join(await tempDir(), `dave-cto-${randomBytes(3).toString('hex')}.json`)
    const issued = await ace('credential:issue', [
      '--keystore',
      authority.keystore,
      '--subject',
      dave.aid,
      '--role',
      'cto',
      '--out',
      out,
      '--json',
    ])
    const said = issued.json.said as string
    assert.include(issued.json, { issuer: authority.aid, subject: dave.aid, role: 'cto' })

    const registered = await ace('credential:register', [out, '--json'])
    assert.include(registered.json, {
      said,
      role: 'cto',
      subject: dave.aid,
      created: true,
      revokedAt: null,
    })
    const row = await db.from('credentials').where('said', said).firstOrFail()
    assert.equal(
      row.document,
      new TextDecoder().decode(serialize(JSON.parse(await readFile(out, 'utf8')).credential).raw)
    )
    const repeated = await ace('credential:register', [out, '--json'])
    assert.isFalse(repeated.json.created)

    // The authority rotates: its earlier credential stays valid, it revokes with its new keys.
    await ace('approver:rotate', ['--keystore', authority.keystore])
    const revoked = await ace('credential:revoke', [
      said,
      '--keystore',
      authority.keystore,
      '--json',
    ])
    assert.isTrue(revoked.json.revoked)
    assert.isString(revoked.json.revokedAt)
    const again = await ace('credential:register', [out], 1)
    assert.match(errorLineOf(again), /^E_CREDENTIAL_REVOKED: /)
    const twice = await ace('credential:revoke', [said, '--keystore', authority.keystore], 1)
    assert.match(errorLineOf(twice), /^E_CREDENTIAL_REVOKED: /)

    // One record for the registration, one for the revocation, with the SAIDs involved.
    const actor = process.env.USER ?? 'cli'
    const registrations = await auditRecordsOf('credential.register', 'credential', said)
    assert.lengthOf(registrations, 1)
    assert.include(registrations[0], { actor, outcome: 'done' })
    assert.include(registrations[0].data, {
      credential: said,
      issuer: authority.aid,
      subject: dave.aid,
      role: 'cto',
    })
    const revocations = await auditRecordsOf('credential.revoke', 'credential', said)
    assert.lengthOf(revocations, 1)
    const stored = await db.from('credentials').where('said', said).firstOrFail()
    assert.include(revocations[0].data, {
      credential: said,
      revocation: JSON.parse(stored.revocation).d,
      issuer: authority.aid,
    })
    assert.lengthOf(await auditRecordsOf('approver.register', 'aid', authority.aid), 1)
    assert.lengthOf(await auditRecordsOf('approver.rotate', 'aid', authority.aid), 1)
    await assertAuditChainIntact(assert)

    const unknownRole = await ace(
      'credential:issue',
      [
        '--keystore',
        authority.keystore,
        '--subject',
        dave.aid,
        '--role',
        'janitor',
        '--out',
        `${out}.x`,
      ],
      1
    )
    assert.match(errorLineOf(unknownRole), /^E_ROLE_UNKNOWN: Unknown role "janitor"/)
  })

  test('an issuer that is not a role authority, or an unregistered subject, is refused', async ({
    assert,
  }) => {
    const credentials = await app.container.make(CredentialService)
    const notAuthority = makeAid(0x81, 0x82)
    const subject = makeAid(0x83, 0x84)
    await registerAid(notAuthority)
    await registerAid(subject)
    const dt = new Date().toISOString()
    const byPeer = issueRoleCredential({
      issuer: notAuthority.est,
      signers: notAuthority.current,
      subject: subject.state.aid,
      role: 'cto',
      dt,
    })
    const peer = await credentials.register(byPeer).catch((e) => e)
    assert.equal(peer.code, 'E_APPROVER_NOT_AUTHORITY')

    const authority = makeAid(0x85, 0x86)
    await registerAid(authority, true)
    const stranger = makeAid(0x87, 0x88).state.aid
    const toStranger = issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: stranger,
      role: 'cto',
      dt,
    })
    assert.equal(await codeOf(credentials.register(toStranger)), 'E_APPROVER_UNKNOWN')

    // After the authority rotates, its rotated-out keys cannot issue new credentials.
    const rotatedAuthority = rotateAid(authority, 0x8a)
    const approvers = await app.container.make(ApproverService)
    await approvers.rotate(encodeMessage(rotatedAuthority.kel[1]))
    const stale = issueRoleCredential({
      issuer: authority.est,
      signers: authority.current,
      subject: subject.state.aid,
      role: 'cto',
      dt,
    })
    assert.equal(await codeOf(credentials.register(stale)), 'E_SIGNATURE_INVALID')

    const forged = issueRoleCredential({
      issuer: rotatedAuthority.est,
      signers: [seedSigner(0x89)],
      subject: subject.state.aid,
      role: 'cto',
      dt,
    })
    assert.equal(await codeOf(credentials.register(forged)), 'E_SIGNATURE_INVALID')
    assert.equal(
      await db
        .from('credentials')
        .where('subject', subject.state.aid)
        .count('* as n')
        .first()
        .then((r) => Number(r.n)),
      0
    )
  })
})

test.group('governance / secrets stay with the approver', () => {
  test('no seed or passphrase in the database or in any command output', async ({ assert }) => {
    const erin = await newApprover('erin')
    const rotated = await ace('approver:rotate', ['--keystore', erin.keystore, '--json'])
    const secrets = decodeKeystore(await readFile(erin.keystore, 'utf8'), PASSPHRASE)
    const keystoreText = await readFile(erin.keystore, 'utf8')
    const needles = [PASSPHRASE]
    for (const seed of [...secrets.current, ...secrets.next]) {
      rememberSeed(seed)
      const b = Buffer.from(seed)
      needles.push(b.toString('base64'), b.toString('base64url'), b.toString('hex'))
      needles.push(new Signer({ raw: seed, transferable: true }).qb64)
    }
    for (const needle of needles)
      assert.notInclude(keystoreText, needle, 'keystore holds no seed in clear')

    const dump = JSON.stringify([
      await db.from('approvers'),
      await db.from('key_events'),
      await db.from('credentials'),
    ])
    const output = JSON.stringify([erin.init.all, erin.registered, rotated.all])
    for (const needle of needles) {
      assert.notInclude(dump, needle, 'database holds no seed or passphrase')
      assert.notInclude(output, needle, 'command output holds no seed or passphrase')
    }
  })
})
