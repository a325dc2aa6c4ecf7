import '@adonisjs/core/types/http'

type ParamValue = string | number | bigint | boolean

export type ScannedRoutes = {
  ALL: {
    'entries.store': { paramsTuple?: []; params?: {} }
    'entries.show': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
    'entries.update': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
    'entries.destroy': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
    'health.ready': { paramsTuple?: []; params?: {} }
    'metrics.show': { paramsTuple?: []; params?: {} }
    'audit.index': { paramsTuple?: []; params?: {} }
    'rotations.status': { paramsTuple?: []; params?: {} }
    'rotations.index': { paramsTuple?: []; params?: {} }
    'rotations.show': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
    'rotations.store': { paramsTuple?: []; params?: {} }
    'rotations.cancel': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
  }
  GET: {
    'entries.show': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
    'health.ready': { paramsTuple?: []; params?: {} }
    'metrics.show': { paramsTuple?: []; params?: {} }
    'audit.index': { paramsTuple?: []; params?: {} }
    'rotations.status': { paramsTuple?: []; params?: {} }
    'rotations.index': { paramsTuple?: []; params?: {} }
    'rotations.show': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
  }
  HEAD: {
    'entries.show': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
    'health.ready': { paramsTuple?: []; params?: {} }
    'metrics.show': { paramsTuple?: []; params?: {} }
    'audit.index': { paramsTuple?: []; params?: {} }
    'rotations.status': { paramsTuple?: []; params?: {} }
    'rotations.index': { paramsTuple?: []; params?: {} }
    'rotations.show': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
  }
  POST: {
    'entries.store': { paramsTuple?: []; params?: {} }
    'rotations.store': { paramsTuple?: []; params?: {} }
    'rotations.cancel': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
  }
  PUT: {
    'entries.update': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
  }
  DELETE: {
    'entries.destroy': { paramsTuple: [ParamValue]; params: {'id': ParamValue} }
  }
}
declare module '@adonisjs/core/types/http' {
  export interface RoutesList extends ScannedRoutes {}
}