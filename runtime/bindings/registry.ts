import * as v from 'valibot'

import { ai } from './ai/index.ts'
import { bucket } from './bucket/index.ts'
import type { BindingDefinition, BindingSpecBase } from './define.ts'

/**
 * Every binding kind sovra knows, by type. Adding a kind is one folder (`runtime/bindings/<kind>/`, made with
 * defineBinding) and one line here; config, isolates, hosts, testing and the OpenWhisk build loop over this record.
 */
export const BINDINGS = { bucket, ai } as const

/** A binding kind's type name. */
export type BindingType = keyof typeof BINDINGS

/** One entry of a worker's `bindings` list: a valibot variant on `type` over every kind's schema. */
export const BindingSchema = v.variant('type', [bucket.schema, ai.schema])

/** A resolved binding of any kind. */
export type Binding = v.InferOutput<typeof BindingSchema>

/** The definition of a binding's kind, typed loosely for code that loops over every kind. */
export function bindingKind(type: string): BindingDefinition<v.GenericSchema<unknown, BindingSpecBase>> {
  const kind = (
    BINDINGS as unknown as Record<string, BindingDefinition<v.GenericSchema<unknown, BindingSpecBase>> | undefined>
  )[type]
  if (kind === undefined)
    throw new Error(`unknown binding type ${JSON.stringify(type)}; known: ${Object.keys(BINDINGS).join(', ')}`)
  return kind
}
