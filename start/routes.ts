/*
|--------------------------------------------------------------------------
| Routes
|--------------------------------------------------------------------------
*/
import router from '@adonisjs/core/services/router'
import { middleware } from '#start/kernel'

const EntriesController = () => import('#controllers/entries_controller')

router.get('/health/live', () => ({ status: 'ok' }))

router
  .group(() => {
    router
      .post('/', [EntriesController, 'store'])
      .use(middleware.auth({ ability: 'entries:write' }))
    router
      .get('/:id', [EntriesController, 'show'])
      .use(middleware.auth({ ability: 'entries:read' }))
    router
      .put('/:id', [EntriesController, 'update'])
      .use(middleware.auth({ ability: 'entries:write' }))
    router
      .delete('/:id', [EntriesController, 'destroy'])
      .use(middleware.auth({ ability: 'entries:write' }))
  })
  .prefix('/entries')
  // Digits only, kept as a string: ids are bigints (no Number cast, no precision loss).
  .where('id', /^[0-9]+$/)
