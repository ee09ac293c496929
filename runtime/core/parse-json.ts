import { SovraError } from './errors.ts'

/** A Standard Schema (valibot, zod, arktype): what {@link parseJson} validates with. */
export interface StandardSchema<TOutput> {
  readonly '~standard': {
    validate(value: unknown): StandardResult<TOutput> | Promise<StandardResult<TOutput>>
    readonly types?: { readonly output: TOutput } | undefined
  }
}

type StandardResult<T> =
  | { value: T; issues?: undefined }
  | { issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined }> }

/** One problem with a request body: where (`$.items[0].id`) and what. */
export interface BodyIssue {
  path: string
  message: string
}

function pathOf(path: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined): string {
  let out = '$'
  for (const p of path ?? []) {
    const key = typeof p === 'object' ? p.key : p
    out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`
  }
  return out
}

/**
 * Reads a request's JSON body and validates it with a schema. A body that is not JSON, or does not match, is a 400
 * (ERR_BAD_REQUEST) listing every issue with its path, in the message and as `issues` in the error body.
 * @param request the request
 * @param schema a Standard Schema (a valibot schema)
 * @example
 * const body = await parseJson(request, v.object({ question: v.pipe(v.string(), v.minLength(1)) }))
 */
export async function parseJson<TOutput>(request: Request, schema: StandardSchema<TOutput>): Promise<TOutput> {
  const text = await request.text()
  if (text.trim() === '') throw new SovraError('ERR_BAD_REQUEST', 'expected a JSON body, received an empty body')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `the body is not valid JSON (${(e as Error).message}); received ${JSON.stringify(shown)}`,
    )
  }
  const result = await schema['~standard'].validate(value)
  if (result.issues !== undefined) {
    const issues: BodyIssue[] = result.issues.map((i) => ({ path: pathOf(i.path), message: i.message }))
    throw new SovraError(
      'ERR_BAD_REQUEST',
      `invalid body: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { details: { issues } },
    )
  }
  return result.value
}
