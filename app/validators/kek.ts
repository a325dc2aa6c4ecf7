import vine, { SimpleMessagesProvider } from '@vinejs/vine'
import { kekNameRule } from '#validators/entry'

/**
 * `kek:create` input: one KEK name.
 */
export const kekNameValidator = vine.compile(
  vine.object({
    name: kekNameRule.clone(),
  })
)

/**
 * `demo:seed` input: KEK name, row count and batch size.
 */
export const demoSeedValidator = vine.compile(
  vine.object({
    kek: kekNameRule.clone(),
    rows: vine.number().withoutDecimals().min(1).max(100_000_000),
    batch: vine.number().withoutDecimals().min(1).max(10_000),
  })
)

const kekNameMessage =
  'Invalid KEK name: use letters, digits and _ . - (1 to 128 characters, starting with a letter or digit)'

kekNameValidator.messagesProvider = new SimpleMessagesProvider({ 'name.regex': kekNameMessage })
demoSeedValidator.messagesProvider = new SimpleMessagesProvider({ 'kek.regex': kekNameMessage })
