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

const RotationsController = () => import('#controllers/rotations_controller')
const MetricsController = () => import('#controllers/metrics_controller')
const HealthController = () => import('#controllers/health_controller')

// Readiness for load balancers and Kubernetes: no token (the report holds no secret).
router.get('/health/ready', [HealthController, 'ready'])

router
  .get('/metrics', [MetricsController, 'show'])
  .use(middleware.auth({ ability: 'rotation:read' }))

router
  .group(() => {
    router
      .get('/status', [RotationsController, 'status'])
      .use(middleware.auth({ ability: 'rotation:read' }))
    router
      .get('/', [RotationsController, 'index'])
      .use(middleware.auth({ ability: 'rotation:read' }))
    router
      .get('/:id', [RotationsController, 'show'])
      .use(middleware.auth({ ability: 'rotation:read' }))
    router
      .post('/', [RotationsController, 'store'])
      .use(middleware.auth({ ability: 'rotation:admin' }))
    router
      .post('/:id/cancel', [RotationsController, 'cancel'])
      .use(middleware.auth({ ability: 'rotation:admin' }))
  })
  .prefix('/rotations')
  .where('id', /^[0-9]+$/)
