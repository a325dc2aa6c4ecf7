/*
|--------------------------------------------------------------------------
| Scheduled tasks (`node ace scheduler:run`)
|--------------------------------------------------------------------------
|
| One task: the managed-KEK lifecycle tick (app/services/rotation_scheduler.ts).
| It runs on config/rewrap.ts `lifecycle.schedule` (cron, daily by default)
| and once at start-up, so a scheduler that was down catches up at once.
| Decisions come from key ages, so running it often is harmless.
|
*/
import app from '@adonisjs/core/services/app'
import scheduler from 'adonisjs-scheduler/services/main'
import type { RewrapConfig } from '#config/rewrap'

const { schedule } = app.config.get<RewrapConfig>('rewrap').lifecycle

scheduler
  .call(async () => {
    const { RotationScheduler } = await import('#services/rotation_scheduler')
    const rotations = await app.container.make(RotationScheduler)
    await rotations.tick()
  })
  .cron(schedule)
  .immediate()
  .withoutOverlapping()
