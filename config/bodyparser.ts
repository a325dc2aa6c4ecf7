/*
|--------------------------------------------------------------------------
| Request bodies
|--------------------------------------------------------------------------
|
| The API accepts JSON bodies only, on its write routes, and reads them
| only after the request is authenticated (app/middleware/json_body_middleware.ts;
| the framework's body parser is not used). Anything else is refused:
| other media types 415 E_UNSUPPORTED_MEDIA_TYPE, oversize bodies 413
| E_REQUEST_ENTITY_TOO_LARGE, bad JSON / encoding / nesting 400 E_INVALID_JSON.
|
*/

/** JSON body settings. */
export interface JsonBodyConfig {
  /** Largest body in bytes, after decompression. */
  limitBytes: number
  /** Deepest nesting of objects/arrays accepted (the body itself is depth 1). */
  maxDepth: number
  /** Accepted `Content-Encoding`s (`identity` = none). */
  encodings: Array<'identity' | 'gzip' | 'deflate' | 'br'>
}

const bodyParserConfig: { json: JsonBodyConfig } = {
  json: {
    limitBytes: 1024 * 1024,
    maxDepth: 64,
    encodings: ['identity', 'gzip', 'deflate', 'br'],
  },
}

export default bodyParserConfig
