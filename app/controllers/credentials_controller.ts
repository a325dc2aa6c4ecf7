import { inject } from '@adonisjs/core'
import type { HttpContext } from '@adonisjs/core/http'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import type { SignedCredential, SignedRevocation } from '#app/governance/credentials'
import { CredentialService } from '#services/credential_service'
import {
  listCredentialsValidator,
  registerCredentialValidator,
  revokeCredentialValidator,
} from '#validators/governance'

/**
 * /credentials (governance:admin): register a role credential signed by a
 * role authority, record its signed revocation, list and show them; the
 * HTTP side of credential:register and credential:revoke. Shapes in
 * docs/api.md.
 */
@inject()
export default class CredentialsController {
  constructor(private credentials: CredentialService) {}

  /**
   * GET /credentials?subject= → `{ data: [credential, …] }`, oldest first
   */
  async index({ request }: HttpContext) {
    const { subject } = await request.validateUsing(listCredentialsValidator, {
      data: request.qs(),
    })
    return { data: await this.credentials.list(subject) }
  }

  /**
   * GET /credentials/:said → the credential with its signed documents
   */
  async show({ params }: HttpContext) {
    return this.credentials.show(params.said)
  }

  /**
   * POST /credentials `{ credential, signature, approval? }` → 201 credential (200 when already registered)
   */
  async store({ request, response, auth }: HttpContext) {
    const { approval, ...body } = await request.validateUsing(registerCredentialValidator, {
      data: request.body(),
    })
    const registered = await this.credentials.register(body as unknown as SignedCredential, {
      approval,
      actor: auth.user?.name ?? 'api',
    })
    response.status(registered.created ? 201 : 200)
    return registered
  }

  /**
   * POST /credentials/:said/revocation `{ revocation, signature, approval? }` → 200 credential
   */
  async revoke({ params, request, auth }: HttpContext) {
    const { approval, ...body } = await request.validateUsing(revokeCredentialValidator, {
      data: request.body(),
    })
    const signed = body as unknown as SignedRevocation
    if (signed.revocation.i !== params.said) {
      throw new E_GOVERNANCE_INPUT([
        `the revocation is of ${String(signed.revocation.i)}, not ${params.said}`,
      ])
    }
    return this.credentials.revoke(signed, { approval, actor: auth.user?.name ?? 'api' })
  }
}
