import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { EntryService } from '#services/entry_service'
import { createEntryValidator, updateEntryValidator } from '#validators/entry'

/**
 * /entries CRUD.
 */
@inject()
export default class EntriesController {
  constructor(private entries: EntryService) {}

  /**
   * POST /entries → 201 `{ id, kekName, kekVersion }`
   */
  async store({ request, response }: HttpContext) {
    const { kek, data } = await request.validateUsing(createEntryValidator, {
      data: request.body(),
    })
    response.status(201)
    return this.entries.create(kek, data)
  }

  /**
   * GET /entries/:id → `{ id, kekName, kekVersion, data, … }`
   */
  async show({ params }: HttpContext) {
    return this.entries.find(String(params.id))
  }

  /**
   * PUT /entries/:id → `{ id, kekName, kekVersion }`
   */
  async update({ params, request }: HttpContext) {
    const { data } = await request.validateUsing(updateEntryValidator, {
      data: request.body(),
    })
    return this.entries.update(String(params.id), data)
  }

  /**
   * DELETE /entries/:id → 204
   */
  async destroy({ params, response }: HttpContext) {
    await this.entries.delete(String(params.id))
    return response.noContent()
  }
}
