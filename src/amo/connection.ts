import type { IConnection } from 'amocrm-js/dist/common/Connection.js';
import { EventEmitter } from 'amocrm-js/dist/common/EventEmitter.js';
import type { IAPIResponse, IRequestOptions } from 'amocrm-js/dist/interfaces/common.js';
import qs from 'qs';
import type { ServiceHealth } from '../health/service-health.js';
import { HttpError } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { AccessTokenProvider } from './auth.js';
import { amoRefusalFix, type AmoAuthKind } from './health.js';
import {
  AmoResponseError,
  encodeQuery,
  endpointOf,
  withRetries,
  type AmoHttpRequest,
  type AmoHttpResponse,
  type AmoTransport,
  type RetryPolicy,
} from './transport.js';

export interface AmoConnectionOptions {
  transport: AmoTransport;
  auth: AccessTokenProvider;
  retry: RetryPolicy;
  logger: Logger;
  /** Whether the held token is past its expiry (amocrm-js asks this of a connection). */
  isTokenExpired: () => boolean;
  /** Which credentials are configured: a refusal's fix names them. */
  authKind: AmoAuthKind;
  /** Told when a request ends in a refusal (the transport reports every exchange itself). */
  health?: ServiceHealth;
}

/**
 * The transport adapter under amocrm-js: an `IConnection` whose `makeRequest` is the
 * whole request pipeline of the bridge. amocrm-js's `ClientRequest` (client.request,
 * and through it every factory such as client.leads) calls it with
 * (method, url, data, options) exactly as it calls its own Connection; here each call
 *
 * 1. is built against the configured base URL (an absolute URL, such as a `_links.next`
 *    href, keeps only its path and query: the token never goes to another host), GET
 *    data as a PHP-bracket query string, other data as JSON (or a form with useFormData);
 * 2. takes its bearer token from the AccessTokenProvider (loaded, refreshed when expiring);
 * 3. is sent by AmoTransport: one rate-limiter slot, timeout, intact UTF-8, metrics,
 *    success decided by the status code;
 * 4. on a 401, gets one refreshed token and one more try;
 * 5. is retried by p-retry on 429, 5xx and transport failures, honouring Retry-After
 *    (a POST only when amoCRM certainly did not act on it: see `shouldRetry`);
 * 6. when it ends refused (no token, refresh refused, 401 after all), tells the health
 *    tracker what to fix.
 *
 * `data` of the answer is the parsed JSON, or `{}` for an empty body (a 204), as
 * amocrm-js's JSONResponseParser gives it; `response.statusCode` tells them apart. The
 * `parser` request option of amocrm-js is not used: bodies are parsed here.
 */
export class AmoConnection extends EventEmitter implements IConnection {
  constructor(private readonly options: AmoConnectionOptions) {
    super();
  }

  async update(): Promise<boolean> {
    await this.options.auth.accessToken();
    return true;
  }

  connect(): Promise<boolean> {
    return this.update();
  }

  isTokenExpired(): boolean {
    return this.options.isTokenExpired();
  }

  async makeRequest<T>(method: string, url: string, data?: object, options?: IRequestOptions): Promise<IAPIResponse<T>> {
    const response = await this.send(method, url, data, options);
    const parsed: unknown = parseBody(response, method, url);
    // amocrm-js's request API is generic without validation; AmoClient asks for
    // `unknown` and validates every answer with zod.
    return { response: response.message, data: parsed as T };
  }

  /** The same pipeline, answering the raw response; `retry` replaces the client's policy (probes). */
  async send(method: string, url: string, data?: object, options?: IRequestOptions, retry = this.options.retry): Promise<AmoHttpResponse> {
    try {
      return await this.attempts(method, url, data, options, retry);
    } catch (error) {
      const fix = amoRefusalFix(error, this.options.authKind);
      if (fix) this.options.health?.record({ kind: 'unauthorized', fix });
      throw error;
    }
  }

  private attempts(method: string, url: string, data: object | undefined, options: IRequestOptions | undefined, retry: RetryPolicy): Promise<AmoHttpResponse> {
    const request = buildRequest(method, url, data, options);
    const endpoint = endpointOf(request.path);
    const { auth, transport, logger } = this.options;
    let refreshed = false;
    return withRetries(
      async () => {
        const token = await auth.accessToken();
        try {
          return await transport.send({ ...request, token });
        } catch (error) {
          // A 401 means the request was refused, not performed: safe to send again once
          // with a new token, whatever the method.
          if (!(error instanceof HttpError) || error.status !== 401 || refreshed) throw error;
          const next = await auth.onUnauthorized(token);
          if (!next) throw error;
          // Counted only once a new token is in hand: a refresh that failed transiently
          // (and is retried by p-retry with the whole attempt) has not used it up.
          refreshed = true;
          logger.info('amo.request.unauthorized_retry', { method: request.method, endpoint });
          return await transport.send({ ...request, token: next });
        }
      },
      retry,
      { idempotent: request.method !== 'POST', logger, method: request.method, endpoint },
    );
  }
}

function buildRequest(method: string, url: string, data: object | undefined, options: IRequestOptions | undefined): AmoHttpRequest {
  const upper = method.toUpperCase();
  // Only the path and query of an absolute URL are kept: requests go to the base URL.
  const parsed = new URL(url, 'http://base.invalid');
  const headers: Record<string, string> = { ...(options?.headers ?? {}) };
  if (upper === 'GET') {
    const fromUrl = parsed.search ? qs.parse(parsed.search.slice(1), { arrayLimit: 1000, depth: 10 }) : {};
    const query = encodeQuery({ ...(data ?? {}), ...fromUrl });
    return { method: upper, path: query ? `${parsed.pathname}?${query}` : parsed.pathname, headers };
  }
  const path = `${parsed.pathname}${parsed.search}`;
  if (data === undefined) return { method: upper, path, headers };
  if (options?.useFormData) {
    return { method: upper, path, headers, body: qs.stringify(data), contentType: 'application/x-www-form-urlencoded; charset=UTF-8' };
  }
  return { method: upper, path, headers, body: JSON.stringify(data), contentType: 'application/json' };
}

function parseBody(response: AmoHttpResponse, method: string, url: string): unknown {
  if (response.text.trim() === '') return {};
  try {
    return JSON.parse(response.text);
  } catch {
    throw new AmoResponseError(method.toUpperCase(), new URL(url, 'http://base.invalid').pathname, response.status, 'not JSON');
  }
}
