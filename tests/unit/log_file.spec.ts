import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from '@japa/runner'
import { prepareLogFile } from '#app/utils/log_file'

test.group('Ace log file (bounded)', () => {
  test('a missing folder is made and the file can be appended to', ({ assert }) => {
    const path = join(mkdtempSync(join(tmpdir(), 'rewrap-log-')), 'logs', 'ace.log')
    assert.isTrue(prepareLogFile(path))
    assert.isTrue(existsSync(path))
  })

  test('past the limit it becomes <file>.1 (replacing the older one); under it, it stays', ({
    assert,
  }) => {
    const path = join(mkdtempSync(join(tmpdir(), 'rewrap-log-')), 'ace.log')
    writeFileSync(path, 'x'.repeat(100))
    assert.isTrue(prepareLogFile(path, 1000))
    assert.equal(readFileSync(path, 'utf8').length, 100)
    assert.isFalse(existsSync(`${path}.1`))

    writeFileSync(`${path}.1`, 'oldest')
    writeFileSync(path, 'y'.repeat(2000))
    assert.isTrue(prepareLogFile(path, 1000))
    assert.equal(readFileSync(path, 'utf8'), '')
    assert.equal(readFileSync(`${path}.1`, 'utf8'), 'y'.repeat(2000))
  })

  test('a path that cannot be written answers false (the terminal keeps every record)', ({
    assert,
  }) => {
    const file = join(mkdtempSync(join(tmpdir(), 'rewrap-log-')), 'a-file')
    writeFileSync(file, '')
    assert.isFalse(prepareLogFile(join(file, 'ace.log')))
  })
})
