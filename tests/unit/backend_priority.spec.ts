import { test } from '@japa/runner'
import { parseTcpTable, serverEndInodes } from '#services/backend_priority'

/* Two lines of a real /proc/net/tcp: a listener on 5432 and one accepted connection. */
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 5950 1 0000000008a25385 100 0 0 10 0
   1: 0100007F:1538 0100007F:D2F4 01 00000000:00000000 00:00000000 00000000   106        0 81234 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D2F4 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 81233 1 0000000000000000 20 4 30 10 -1
garbage
`

/* /proc/net/tcp6: the same connection over ::1. */
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1538 00000000000000000000000001000000:D2F5 01 00000000:00000000 00:00000000 00000000   106        0 90001 1 0000000000000000 20 4 30 10 -1
`

test.group('backend priority: /proc/net/tcp', () => {
  test('parses ports (hex) and inodes, skipping lines that are not rows', ({ assert }) => {
    assert.deepEqual(parseTcpTable(TCP), [
      { localPort: 5432, remotePort: 0, inode: 5950 },
      { localPort: 5432, remotePort: 54004, inode: 81234 },
      { localPort: 54004, remotePort: 5432, inode: 81233 },
    ])
    assert.deepEqual(parseTcpTable(TCP6), [{ localPort: 5432, remotePort: 54005, inode: 90001 }])
    assert.deepEqual(parseTcpTable(''), [])
  })

  test('the server end of a connection is the socket from the server port to our client port', ({
    assert,
  }) => {
    const rows = [...parseTcpTable(TCP), ...parseTcpTable(TCP6)]
    assert.deepEqual([...serverEndInodes(rows, 5432, 54004)], [81234])
    assert.deepEqual([...serverEndInodes(rows, 5432, 54005)], [90001])
    assert.equal(serverEndInodes(rows, 5432, 40000).size, 0)
  })
})
