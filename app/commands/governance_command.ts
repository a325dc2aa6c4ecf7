import { randomBytes } from 'node:crypto'
import { readFile, rename, unlink, writeFile, chmod } from 'node:fs/promises'
import { Secret } from '@adonisjs/core/helpers'
import env from '#start/env'
import { E_GOVERNANCE_INPUT } from '#app/errors'
import { decodeKeystore, encodeKeystore, type KeystoreSecrets } from '#app/governance/keystore'
import { RewrapCommand } from '#app/commands/rewrap_command'

/** Random bytes for seeds, salts and nonces. */
export const random = (bytes: number) => new Uint8Array(randomBytes(bytes))

/**
 * Base of the approver and credential commands: the keystore passphrase
 * (REWRAP_KEYSTORE_PASSPHRASE, else a hidden prompt), keystore files
 * (mode 0600, written whole or not at all) and JSON document files.
 */
export abstract class GovernanceCommand extends RewrapCommand {
  /** The keystore passphrase: from the environment, else asked for without echo. */
  protected async passphrase(): Promise<string> {
    const fromEnv = env.get('REWRAP_KEYSTORE_PASSPHRASE') as Secret<string> | string | undefined
    const value =
      fromEnv instanceof Secret
        ? fromEnv.release()
        : (fromEnv ?? (await this.prompt.secure('Keystore passphrase')))
    if (!value) throw new E_GOVERNANCE_INPUT(['empty keystore passphrase'])
    return value
  }

  /** Opens a keystore file (`E_KEYSTORE_PASSPHRASE`, `E_KEYSTORE_INVALID`). */
  protected async openKeystore(file: string): Promise<KeystoreSecrets> {
    return decodeKeystore(await this.readText(file, 'keystore'), await this.passphrase())
  }

  /**
   * Seals `secrets` into `file` with mode 0600. `exclusive` refuses to
   * overwrite an existing file.
   */
  protected async writeKeystore(
    file: string,
    secrets: KeystoreSecrets,
    passphrase: string,
    exclusive: boolean
  ): Promise<void> {
    const text = encodeKeystore(secrets, passphrase, random)
    try {
      await writeFile(file, text, { mode: 0o600, flag: exclusive ? 'wx' : 'w' })
    } catch (error) {
      if ((error as { code?: string }).code === 'EEXIST') {
        throw new E_GOVERNANCE_INPUT([`${file} exists; not overwritten`])
      }
      throw error
    }
    await chmod(file, 0o600)
  }

  /**
   * Replaces a keystore once `commit` succeeded: the new keystore goes to
   * `<file>.next` (0600) first, `commit` runs, then it is renamed over
   * `file`; if `commit` fails it is removed and `file` is untouched.
   */
  protected async replaceKeystore<T>(
    file: string,
    secrets: KeystoreSecrets,
    passphrase: string,
    commit: () => Promise<T>
  ): Promise<T> {
    const pending = `${file}.next`
    await this.writeKeystore(pending, secrets, passphrase, false)
    let result: T
    try {
      result = await commit()
    } catch (error) {
      await unlink(pending).catch(() => undefined)
      throw error
    }
    await rename(pending, file)
    return result
  }

  /** A file's text (`E_GOVERNANCE_INPUT` when it cannot be read). */
  protected async readText(file: string, what: string): Promise<string> {
    try {
      return await readFile(file, 'utf8')
    } catch (error) {
      throw new E_GOVERNANCE_INPUT([
        `cannot read ${what} file ${file} (${(error as { code?: string }).code ?? 'error'})`,
      ])
    }
  }

  /** A JSON file's content (`E_GOVERNANCE_INPUT` when it is not JSON). */
  protected async readJson(file: string, what: string): Promise<any> {
    const text = await this.readText(file, what)
    try {
      return JSON.parse(text)
    } catch {
      throw new E_GOVERNANCE_INPUT([`${what} file ${file} is not JSON`])
    }
  }

  /** Prints `value` as one JSON line (`--json`) or `human` lines. */
  protected print(value: unknown, human: string[]): void {
    if (this.json) this.logger.log(JSON.stringify(value))
    else for (const line of human) this.logger.log(line)
  }
}
