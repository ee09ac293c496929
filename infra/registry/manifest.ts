import * as v from 'valibot'

/** What the registry stores. */
export const ARTIFACT_KINDS = ['bundle', 'model', 'prompt', 'eval', 'dataset'] as const
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number]

const sha256 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256'))

/** A signed artifact manifest (the DSSE payload). */
export const ManifestSchema = v.object({
  schema: v.literal('sovra.manifest/v1'),
  kind: v.picklist(ARTIFACT_KINDS),
  name: v.pipe(
    v.string(),
    v.regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'a name of lowercase letters, digits, ".", "-" or "_"'),
  ),
  version: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  subjects: v.pipe(
    v.array(v.object({ name: v.string(), sha256, size: v.pipe(v.number(), v.integer(), v.minValue(0)) })),
    v.minLength(1),
  ),
  created_by: v.string(),
  created_at: v.pipe(v.string(), v.isoTimestamp()),
  /** Source artifacts, as `sha256:<hex>` digests. */
  lineage: v.array(v.pipe(v.string(), v.regex(/^sha256:[0-9a-f]{64}$/, 'a digest like sha256:<64 hex>'))),
  legal_basis: v.optional(v.string()),
  retention: v.optional(v.string()),
})
export type Manifest = v.InferOutput<typeof ManifestSchema>
