import vine from '@vinejs/vine'

/** POST /console/sign-in: the pasted access token (its grammar is checked by TokenService). */
export const consoleSignInValidator = vine.compile(
  vine.object({
    token: vine.string().trim().minLength(1).maxLength(512),
  })
)
