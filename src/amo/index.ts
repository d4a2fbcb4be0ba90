export { AmoClient, COMPLEX_BATCH_MAX, toComplexLead, type AmoClientOptions } from './client.js';
export { AmoAuthError, LongLivedToken, OAuthTokens, type AccessTokenProvider } from './auth.js';
export { AmoConnection } from './connection.js';
export {
  MemoryRateLimiter,
  PostgresRateLimiter,
  createRateLimiter,
  type RateLimiter,
  type RateLimiterOptions,
  type RateSlotRelease,
} from './rate-limiter.js';
export { MissingTokenError, TokenStore, tokenStoreFor, type AmoTokenSet } from './token-store.js';
export {
  AmoResponseError,
  AmoTransport,
  AmoTransportError,
  encodeQuery,
  endpointOf,
  shouldRetry,
  withRetries,
  type AmoHttpRequest,
  type AmoHttpResponse,
  type RetryPolicy,
} from './transport.js';
export * from './types.js';
