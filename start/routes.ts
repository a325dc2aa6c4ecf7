/*
|--------------------------------------------------------------------------
| Routes
|--------------------------------------------------------------------------
|
| Order on each route: `auth` (token, ability, failure throttle), then `id`
| (a `:id` that cannot exist is that resource's 404), then `json` on write
| routes (the body is read only for an authenticated, authorized caller).
|
*/
import router from '@adonisjs/core/services/router'
import { middleware } from '#start/kernel'

const EntriesController = () => import('#controllers/entries_controller')

router.get('/health/live', () => ({ status: 'ok' }))

const entryId = () => middleware.id({ resource: 'entry' })
const rotationId = () => middleware.id({ resource: 'rotation' })

router
  .group(() => {
    router
      .post('/', [EntriesController, 'store'])
      .use([middleware.auth({ ability: 'entries:write' }), middleware.json()])
    router
      .get('/:id', [EntriesController, 'show'])
      .use([middleware.auth({ ability: 'entries:read' }), entryId()])
    router
      .put('/:id', [EntriesController, 'update'])
      .use([middleware.auth({ ability: 'entries:write' }), entryId(), middleware.json()])
    router
      .delete('/:id', [EntriesController, 'destroy'])
      .use([middleware.auth({ ability: 'entries:write' }), entryId(), middleware.json()])
  })
  .prefix('/entries')
  // Digits only here; the `id` middleware bounds the value (1 to 2^63-1).
  .where('id', /^[0-9]+$/)

const RotationsController = () => import('#controllers/rotations_controller')
const MetricsController = () => import('#controllers/metrics_controller')
const HealthController = () => import('#controllers/health_controller')
const AuditController = () => import('#controllers/audit_controller')

// Readiness for load balancers and Kubernetes: no token (the report holds no secret).
router.get('/health/ready', [HealthController, 'ready'])

router
  .get('/metrics', [MetricsController, 'show'])
  .use(middleware.auth({ ability: 'rotation:read' }))

// The signed audit trail, paged (docs/auditing.md).
router.get('/audit', [AuditController, 'index']).use(middleware.auth({ ability: 'rotation:read' }))

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
      .use([middleware.auth({ ability: 'rotation:read' }), rotationId()])
    router
      .post('/', [RotationsController, 'store'])
      .use([middleware.auth({ ability: 'rotation:admin' }), middleware.json()])
    router
      .post('/:id/cancel', [RotationsController, 'cancel'])
      .use([middleware.auth({ ability: 'rotation:admin' }), rotationId(), middleware.json()])
  })
  .prefix('/rotations')
  .where('id', /^[0-9]+$/)

const ReencryptsController = () => import('#controllers/reencrypts_controller')
const reencryptId = () => middleware.id({ resource: 'reencrypt' })

// Re-encrypt runs (started by `node ace reencrypt`): follow and cancel them.
router
  .group(() => {
    router
      .get('/', [ReencryptsController, 'index'])
      .use(middleware.auth({ ability: 'rotation:read' }))
    router
      .get('/:id', [ReencryptsController, 'show'])
      .use([middleware.auth({ ability: 'rotation:read' }), reencryptId()])
    router
      .post('/:id/cancel', [ReencryptsController, 'cancel'])
      .use([middleware.auth({ ability: 'rotation:admin' }), reencryptId(), middleware.json()])
  })
  .prefix('/reencrypts')
  .where('id', /^[0-9]+$/)

const ApproversController = () => import('#controllers/approvers_controller')

router
  .group(() => {
    router
      .get('/', [ApproversController, 'index'])
      .use(middleware.auth({ ability: 'governance:admin' }))
    router
      .post('/', [ApproversController, 'store'])
      .use([middleware.auth({ ability: 'governance:admin' }), middleware.json()])
  })
  .prefix('/approvers')

const ApprovalsController = () => import('#controllers/approvals_controller')

// Dual control (docs/governance.md): requests, approvers' signatures, status.
router
  .group(() => {
    router
      .get('/', [ApprovalsController, 'index'])
      .use(middleware.auth({ ability: 'rotation:read' }))
    router
      .get('/:said', [ApprovalsController, 'show'])
      .use(middleware.auth({ ability: 'rotation:read' }))
    router
      .post('/', [ApprovalsController, 'store'])
      .use([middleware.auth({ ability: 'rotation:admin' }), middleware.json()])
    router
      .post('/:said/signatures', [ApprovalsController, 'sign'])
      .use([middleware.auth({ ability: 'approvals:sign' }), middleware.json()])
  })
  .prefix('/approvals')

const CredentialsController = () => import('#controllers/credentials_controller')

// Role credentials (docs/governance.md): the HTTP side of credential:register and credential:revoke.
router
  .group(() => {
    const admin = () => middleware.auth({ ability: 'governance:admin' })
    router.get('/', [CredentialsController, 'index']).use(admin())
    router.get('/:said', [CredentialsController, 'show']).use(admin())
    router.post('/', [CredentialsController, 'store']).use([admin(), middleware.json()])
    router
      .post('/:said/revocation', [CredentialsController, 'revoke'])
      .use([admin(), middleware.json()])
  })
  .prefix('/credentials')
  .where('said', /^E[A-Za-z0-9_-]{43}$/)

const ConsoleController = () => import('#controllers/console_controller')
const ConsoleSessionController = () => import('#controllers/console_session_controller')
const ConsoleAssetsController = () => import('#controllers/console_assets_controller')

/*
| The operator console (docs/console.md): a session cookie instead of a
| bearer token, so every form carries shield's CSRF field. Order on a page:
| session, shield (CSRF secret, content policy), then the signed-in check;
| on a form post: session, the signed-in check, the form body, then shield
| (which checks the form's `_csrf`).
*/
router.get('/console/assets/:file', [ConsoleAssetsController, 'show'])

router
  .group(() => {
    router
      .get('/sign-in', [ConsoleSessionController, 'create'])
      .use([middleware.session(), middleware.consoleShield()])
    router
      .post('/sign-in', [ConsoleSessionController, 'store'])
      .use([middleware.session(), middleware.form(), middleware.consoleShield()])
    router
      .post('/sign-out', [ConsoleSessionController, 'destroy'])
      .use([middleware.session(), middleware.form(), middleware.consoleShield()])
    router
      .get('/', [ConsoleController, 'index'])
      .use([
        middleware.session(),
        middleware.consoleShield(),
        middleware.consoleAuth({ ability: 'rotation:read' }),
      ])
    router
      .get('/live', [ConsoleController, 'live'])
      .use([
        middleware.session(),
        middleware.consoleShield(),
        middleware.consoleAuth({ ability: 'rotation:read' }),
      ])
    router
      .post('/runs/:id/cancel', [ConsoleController, 'cancel'])
      .use([
        middleware.session(),
        middleware.consoleAuth({ ability: 'rotation:admin' }),
        rotationId(),
        middleware.form(),
        middleware.consoleShield(),
      ])
      .where('id', /^[0-9]+$/)
    router
      .post('/reencrypts/:id/cancel', [ConsoleController, 'cancelReencrypt'])
      .use([
        middleware.session(),
        middleware.consoleAuth({ ability: 'rotation:admin' }),
        reencryptId(),
        middleware.form(),
        middleware.consoleShield(),
      ])
      .where('id', /^[0-9]+$/)
  })
  .prefix('/console')
