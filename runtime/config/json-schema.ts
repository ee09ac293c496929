import { toJsonSchema } from '@valibot/to-json-schema'
import { ConfigSchema } from './schema.ts'

/** Where the generated schema is committed, for editors (`"$schema"` or Even Better TOML's `#:schema`). */
export const JSON_SCHEMA_FILE = 'schema/wrangler-compat.schema.json'

/**
 * Generates the JSON Schema of `wrangler-compat.toml` from the valibot schema, so editors validate and complete the
 * same rules `sovra config check` enforces.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = toJsonSchema(ConfigSchema, { errorMode: 'ignore' }) as Record<string, unknown>
  return {
    ...schema,
    title: 'sovra wrangler-compat.toml',
    description: 'sovra project config: wrangler keys plus sovra tables ([[functions]], tier, [isolates], ...)',
  }
}
