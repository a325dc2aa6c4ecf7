import { test } from '@japa/runner'
import { runScript } from '#tests/helpers/child_script'

/*
| Run in a child process: lowering the test runner's own priority would slow
| the rest of the suite.
*/
const SCRIPT = `
import { readdirSync, readFileSync } from 'node:fs'
import { lowerCpuPriority } from './app/services/cpu_priority.ts'
const nices = () => readdirSync('/proc/self/task').map((tid) => {
  const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
})
const before = nices()
const first = lowerCpuPriority(19)
const after = nices()
const second = lowerCpuPriority(5)
const off = lowerCpuPriority(null)
console.log(JSON.stringify({ before, first, after, second, off, final: nices() }))
`

test.group('cpu priority', () => {
  test('lowers every thread of the process to the nice value, never raises it back', async ({
    assert,
  }) => {
    const out = await runScript(SCRIPT)
    assert.isAbove(out.before.length, 1, 'Node runs several threads')
    assert.isTrue(out.before.every((n: number) => n === 0))
    assert.equal(out.first, 19)
    assert.isTrue(
      out.after.every((n: number) => n === 19),
      JSON.stringify(out.after)
    )
    assert.equal(out.second, 19, 'asking for 5 later does not raise the priority')
    assert.isNull(out.off)
    assert.isTrue(out.final.every((n: number) => n === 19))
  })
    .skip(process.platform !== 'linux', 'thread priorities are read from /proc (Linux only)')
    .timeout(30_000)
})
