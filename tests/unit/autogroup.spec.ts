import { test } from '@japa/runner'
import { autogroupNice, lowerSessionAutogroup, sessionOf } from '#services/autogroup'

/** A /proc with one process: its stat line and autogroup file. */
function fakeProc(stat: string, autogroup: string | null) {
  const writes: Array<[string, string]> = []
  return {
    writes,
    read(path: string) {
      if (path.endsWith('/stat')) return stat
      if (autogroup === null) throw new Error('ENOENT')
      return autogroup
    },
    write(path: string, text: string) {
      writes.push([path, text])
    },
  }
}

// Real lines of this host: a PostgreSQL backend (its own session) and a shell's child.
const BACKEND_STAT =
  '20812 (postgres) S 2190 20812 20812 0 -1 4194624 3080 0 0 0 21 8 0 0 20 0 1 0 6226 229646336 4203'
const CHILD_STAT =
  '4300 (node (v24)) R 4227 4300 4227 34816 4300 4194304 100 0 0 0 1 0 0 0 20 0 7 0'

test.group('autogroup (Linux session scheduling)', () => {
  test('parses the session id of /proc/<pid>/stat, a command name with spaces and parens included', ({
    assert,
  }) => {
    assert.equal(sessionOf(BACKEND_STAT), 20812)
    assert.equal(sessionOf(CHILD_STAT), 4227)
    assert.isNull(sessionOf('garbage'))
  })

  test('parses the nice value of /proc/<pid>/autogroup', ({ assert }) => {
    assert.equal(autogroupNice('/autogroup-641 nice 0\n'), 0)
    assert.equal(autogroupNice('/autogroup-9 nice 19'), 19)
    assert.equal(autogroupNice('/autogroup-9 nice -5'), -5)
    assert.isNull(autogroupNice(''))
  })

  test('a session leader: its autogroup is lowered, never raised', ({ assert }) => {
    const proc = fakeProc(BACKEND_STAT, '/autogroup-641 nice 0\n')
    assert.equal(lowerSessionAutogroup(20812, 19, proc), 'lowered')
    assert.deepEqual(proc.writes, [['/proc/20812/autogroup', '19']])

    const already = fakeProc(BACKEND_STAT, '/autogroup-641 nice 19\n')
    assert.equal(lowerSessionAutogroup(20812, 12, already), 'unchanged')
    assert.deepEqual(already.writes, [])
  })

  test("a process in another's session (a shell's): left alone, the session is shared", ({
    assert,
  }) => {
    const proc = fakeProc(CHILD_STAT, '/autogroup-85 nice 0\n')
    assert.equal(lowerSessionAutogroup(4300, 19, proc), 'shared-session')
    assert.deepEqual(proc.writes, [])
  })

  test('no autogroup file (kernel without it) or no permission: unavailable, nothing thrown', ({
    assert,
  }) => {
    assert.equal(lowerSessionAutogroup(20812, 19, fakeProc(BACKEND_STAT, null)), 'unavailable')
    const refusing = {
      read: fakeProc(BACKEND_STAT, '/autogroup-641 nice 0').read,
      write() {
        throw new Error('EACCES')
      },
    }
    assert.equal(lowerSessionAutogroup(20812, 19, refusing), 'unavailable')
  })
})
