/*
|--------------------------------------------------------------------------
| HTTP kernel
|--------------------------------------------------------------------------
|
| No global body parsing: a write route reads its JSON body in
| `middleware.json()`, after `middleware.auth()` (start/routes.ts), so an
| unauthenticated request never has its body read.
|
*/
import router from '@adonisjs/core/services/router'
import server from '@adonisjs/core/services/server'

server.errorHandler(() => import('#exceptions/handler'))

server.use([
  () => import('#middleware/request_id_middleware'),
  () => import('#middleware/request_timing_middleware'),
  () => import('#middleware/container_bindings_middleware'),
  () => import('#middleware/force_json_response_middleware'),
  () => import('@adonisjs/shield/shield_middleware'),
  () => import('#middleware/api_headers_middleware'),
])

router.use([() => import('@adonisjs/auth/initialize_auth_middleware')])

/**
 * Named middleware: `middleware.auth({ ability: 'entries:read' })`, then on
 * write routes `middleware.json()`; `middleware.id({ resource })` checks
 * `:id` (a positive bigint, else the resource's 404). The console's routes
 * (and only they) use `session`, `consoleAuth`, `form` and `consoleShield`
 * (CSRF and the page's content policy).
 */
export const middleware = router.named({
  auth: () => import('#middleware/auth_middleware'),
  json: () => import('#middleware/json_body_middleware'),
  id: () => import('#middleware/bigint_id_middleware'),
  session: () => import('@adonisjs/session/session_middleware'),
  consoleShield: () => import('#middleware/console_shield_middleware'),
  consoleAuth: () => import('#middleware/console_auth_middleware'),
  form: () => import('#middleware/form_body_middleware'),
})
