/*
|--------------------------------------------------------------------------
| Ace loader of the one command a process was started for
|--------------------------------------------------------------------------
|
| Ace's loader of ./commands imports every command file to read their
| metadata, and with them everything those import (the governance keys,
| the job queue, …): every `node ace <command>` process paid for all of
| them. Ace asks that loader only when no loader before it knows the
| requested command, so this one (adonisrc.ts `commands`) answers it from
| its own file alone, `rotate:kek` → commands/rotate_kek.(ts|js). A name
| without such a file (`list`, `help`, an alias, a typo), or one whose file
| holds another command, gets nothing here: Ace's loader then scans
| ./commands as before. bin/console.ts names the command; elsewhere (the
| test runner's kernel, `ace.exec`) nothing is named and this loader is
| empty.
|
*/
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import app from '@adonisjs/core/services/app'
import type { BaseCommand } from '@adonisjs/core/ace'
import type { CommandMetaData } from '@adonisjs/core/types/ace'

/** Command names that map to a file name (`ns:name-part` → `ns_name_part`). */
const NAME_RE = /^[a-z0-9]+(?:[:-][a-z0-9]+)*$/

let requested: string | undefined
let loaded: Promise<typeof BaseCommand | null> | undefined

/**
 * Names the command of this process from its argv: the first argument
 * that is not a flag, as Ace's kernel reads it.
 */
export function requestCommand(argv: string[]) {
  requested = argv.find((value) => !value.startsWith('-'))
  loaded = undefined
}

/** The requested command's class from its own file; null when there is none. */
async function load(): Promise<typeof BaseCommand | null> {
  if (!requested || !NAME_RE.test(requested)) return null
  const base = app.commandsPath(requested.replace(/[:-]/g, '_'))
  if (!existsSync(`${base}.ts`) && !existsSync(`${base}.js`)) return null
  // `.js` in both trees: the TypeScript loader maps it to the `.ts` file in development.
  const { default: command } = await import(pathToFileURL(`${base}.js`).href)
  return typeof command === 'function' && command.commandName === requested ? command : null
}

/** Ace loader contract: the requested command's metadata, or nothing. */
export async function getMetaData(): Promise<CommandMetaData[]> {
  loaded ??= load()
  const command = await loaded
  return command ? [command.serialize()] : []
}

/** Ace loader contract: the requested command's class. */
export async function getCommand(metaData: CommandMetaData): Promise<typeof BaseCommand | null> {
  const command = await loaded
  return command && command.commandName === metaData.commandName ? command : null
}
