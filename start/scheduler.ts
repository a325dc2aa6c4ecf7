/*
|--------------------------------------------------------------------------
| Scheduled tasks (`node ace scheduler:run`)
|--------------------------------------------------------------------------
|
| One task: the managed-KEK lifecycle tick (app/services/rotation_scheduler.ts).
| It runs on config/rewrap.ts `lifecycle.schedule` (cron, daily by default)
| and once at start-up, so a scheduler that was down catches up at once.
| Decisions come from key ages, so running it often is harmless.
| `scheduler:run` does only background work: it lowers its CPU priority
| and that of its local Postgres backends (config/rewrap.ts `rotation.cpuNice`,
| `niceLocalBackends`) before the first tick.
|
*/
import app from '@adonisjs/core/services/app'
import scheduler from 'adonisjs-scheduler/services/main'
import type { RewrapConfig } from '#config/rewrap'

const { lifecycle, rotation } = app.config.get<RewrapConfig>('rewrap')

scheduler
  .call(async () => {
    const { enterBackgroundPriority } = await import('#services/cpu_priority')
    enterBackgroundPriority(rotation)
    const { RotationScheduler } = await import('#services/rotation_scheduler')
    const rotations = await app.container.make(RotationScheduler)
    await rotations.tick()
  })
  .cron(lifecycle.schedule)
  .immediate()
  .withoutOverlapping()
