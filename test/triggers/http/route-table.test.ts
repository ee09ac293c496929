import { describe, expect, it } from 'vitest'
import { normalizeRoute, RouteTable } from '../../../triggers/http/route-table.ts'

describe('normalizeRoute', () => {
  it('keeps path patterns and drops a wrangler host part, saying so', () => {
    expect(normalizeRoute('/v1/echo')).toEqual({ pattern: '/v1/echo', droppedHost: undefined })
    expect(normalizeRoute({ pattern: 'api.example.com/v1/*' })).toEqual({
      pattern: '/v1/*',
      droppedHost: 'api.example.com',
    })
  })

  it('rejects a star that does not end the route, queries and bare words', () => {
    expect(() => normalizeRoute('/v1/*/x')).toThrowError(/"\*" may only end a route/)
    expect(() => normalizeRoute('/v1?x=1')).toThrowError(/without query/)
    expect(() => normalizeRoute('echo')).toThrowError(/expected a path such as/)
  })
})

describe('RouteTable', () => {
  const table = new RouteTable([
    { pattern: '/v1/items/*', target: 'items' },
    { pattern: '/v1/items/special', target: 'special' },
    { pattern: '/v1/*', target: 'v1' },
    { pattern: '/v1/echo', target: 'echo' },
  ])

  it('prefers an exact route, then the longest wildcard prefix', () => {
    expect(table.match('/v1/items/special')?.target).toBe('special')
    expect(table.match('/v1/items/42')?.target).toBe('items')
    expect(table.match('/v1/items/')?.target).toBe('items')
    expect(table.match('/v1/echo')?.target).toBe('echo')
    expect(table.match('/v1/other')?.target).toBe('v1')
  })

  it('matches nothing outside its routes', () => {
    expect(table.match('/v2/echo')).toBeUndefined()
    expect(table.match('/v1')).toBeUndefined()
  })

  it('refuses one pattern claimed twice, naming both claimants', () => {
    expect(
      () =>
        new RouteTable([
          { pattern: '/a', target: 'x' },
          { pattern: '/a', target: 'y' },
        ]),
    ).toThrowError(/claimed by both x and y/)
  })
})
