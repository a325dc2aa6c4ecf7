import { configApp } from '@adonisjs/eslint-config'

export default configApp({
  ignores: ['build/**', 'tmp/**', '.data/**', 'node_modules/**', '.adonisjs/**', 'database/schema.ts', 'bench-results/**'],
})
