import { describe, expect, it } from 'vitest'

import { schemaProblems } from '../../../infra/pools/schema-check.ts'

const AT = 'response_format.json_schema.schema'

describe('schemaProblems', () => {
  it('accepts the schemas structured output supports, annotations and unknown keywords included', () => {
    const valid: unknown[] = [
      {},
      {
        type: 'object',
        properties: { approve: { type: 'boolean' }, risk: { enum: ['low', 'high'] } },
        required: ['approve'],
      },
      { type: 'array', items: { enum: ['yes', 'no'] }, minItems: 250, maxItems: 250 },
      { type: ['string', 'null'], minLength: 0, maxLength: 3, title: 'x', description: 'y', format: 'date' },
      { type: 'number', minimum: -1.5, maximum: 2, enum: [1, 1.5] },
      { $defs: { item: { type: 'string' } }, type: 'array', items: { $ref: '#/$defs/item' } },
      { definitions: { n: { type: 'integer' } }, anyOf: [{ $ref: '#/definitions/n' }, { const: 'none' }] },
      { type: 'object', properties: { a: {} }, required: ['a'], additionalProperties: false },
      { type: 'object', additionalProperties: { type: 'integer' } },
    ]
    for (const schema of valid) expect(schemaProblems(schema, AT), JSON.stringify(schema)).toEqual([])
  })

  it('names every problem with its path, the value received and what is valid', () => {
    expect(
      schemaProblems(
        {
          type: 'object',
          properties: {
            a: { type: 'banana' },
            'b-c': { enum: [] },
            d: { type: ['string', 'string'] },
            e: true,
            f: { type: 'array', minItems: 3, maxItems: 1, items: { anyOf: [] } },
            g: { $ref: '#/$defs/missing' },
            h: { type: 'integer', const: 'x', minimum: 'low' },
          },
          required: ['a', 'zz'],
          additionalProperties: false,
        },
        AT,
      ),
    ).toEqual([
      `${AT}.properties.a.type: expected one of "string", "number", "integer", "boolean", "object", "array", "null", or a non-empty array of them without repeats; received "banana"`,
      `${AT}.properties["b-c"].enum: expected a non-empty array of values, received []`,
      `${AT}.properties.d.type: expected one of "string", "number", "integer", "boolean", "object", "array", "null", or a non-empty array of them without repeats; received ["string","string"]`,
      `${AT}.properties.e: expected a schema object, received true`,
      `${AT}.properties.f.items.anyOf: expected a non-empty array of schemas, received []`,
      `${AT}.properties.f.minItems: 3 is more than maxItems 1, so nothing can match`,
      `${AT}.properties.g.$ref: expected a reference to a schema under $defs or definitions of the root schema (it defines none), received "#/$defs/missing"`,
      `${AT}.properties.h.const: expected a value of type integer, received "x"`,
      `${AT}.properties.h.minimum: expected a number, received "low"`,
      `${AT}.required: "zz" is required but not in properties, and additionalProperties is false`,
    ])
  })

  it('refuses a root that is not a schema object', () => {
    expect(schemaProblems([], AT)).toEqual([`${AT}: expected a schema object, received []`])
  })
})
