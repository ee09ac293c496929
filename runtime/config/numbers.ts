import * as v from 'valibot'

/**
 * A whole number from 1 to `max` (config schemas).
 * @param max the largest valid value
 */
export const positiveInt = (max: number) => v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(max))

/**
 * A whole number from 0 to `max` (config schemas).
 * @param max the largest valid value
 */
export const nonNegativeInt = (max: number) => v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(max))
