import type { Response } from 'express';
import type { z } from 'zod';

/**
 * amoCRM's error bodies: RFC 7807 `application/problem+json` with `title`, `type`
 * (an httpstatus.es URL), `status` and `detail`; a 400 on bad input adds
 * `validation-errors: [{request_id, errors: [{code, path, detail}]}]`.
 * Shape from amoCRM's "Справочник ошибок и ответов API" page (amocrm.ru/developers/content/api/errors):
 *   {"validation-errors":[{"request_id":"0","errors":[{"code":"NotSupportedChoice",
 *    "path":"custom_fields_values.0.field_id","detail":"The value you selected is not a valid choice."}]}],
 *    "title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Request validation failed"}
 */

export interface FieldError {
  code: string;
  path: string;
  detail: string;
}

export interface RequestErrors {
  request_id: string;
  errors: FieldError[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface Problem {
  title: string;
  type: string;
  status: number;
  detail: string;
  'validation-errors'?: RequestErrors[];
  [extra: string]: unknown;
}

export function problem(status: number, detail: string, extra: Record<string, unknown> = {}): Problem {
  return {
    title: TITLES[status] ?? 'Error',
    type: `https://httpstatus.es/${status}`,
    status,
    detail,
    ...extra,
  };
}

export function sendProblem(res: Response, status: number, detail: string, extra: Record<string, unknown> = {}): void {
  res.status(status).type('application/problem+json').send(JSON.stringify(problem(status, detail, extra)));
}

/** Thrown by handlers; the app's error handler renders it as the 400 above. */
export class ValidationError extends Error {
  constructor(readonly requestErrors: RequestErrors[]) {
    super('Request validation failed');
    this.name = 'ValidationError';
  }

  static single(code: string, path: string, detail: string, requestId = '0'): ValidationError {
    return new ValidationError([{ request_id: requestId, errors: [{ code, path, detail }] }]);
  }
}

/** Thrown by handlers for a plain problem answer (404 and the like). */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'ProblemError';
  }
}

/** Collects per-item errors of a batch, keyed by the item's request_id. */
export class ErrorCollector {
  private readonly byRequest = new Map<string, FieldError[]>();

  add(requestId: string, code: string, path: string, detail: string): void {
    const list = this.byRequest.get(requestId) ?? [];
    list.push({ code, path, detail });
    this.byRequest.set(requestId, list);
  }

  get empty(): boolean {
    return this.byRequest.size === 0;
  }

  toError(): ValidationError | null {
    if (this.empty) return null;
    return new ValidationError([...this.byRequest].map(([request_id, errors]) => ({ request_id, errors })));
  }

  throwIfAny(): void {
    const error = this.toError();
    if (error) throw error;
  }
}

/** Maps zod issues onto amoCRM's error codes (a best approximation: amoCRM's list is not published). */
function codeOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'NotBlank' : 'InvalidType';
    case 'too_big':
    case 'too_small':
      return 'OutOfRange';
    case 'invalid_value':
    case 'invalid_union':
      return 'NotSupportedChoice';
    default:
      return 'InvalidValue';
  }
}

/**
 * Turns the issues of a zod parse of a batch body (an array of items) into validation errors,
 * one entry per item; `requestIdOf(index)` names the item as the client did (its request_id)
 * or by its position, as amoCRM does.
 */
export function zodToValidationError(
  error: z.ZodError,
  requestIdOf: (index: number) => string = (i) => String(i),
  batch = true,
): ValidationError {
  const collector = new ErrorCollector();
  for (const issue of error.issues) {
    const path = [...issue.path];
    let requestId = '0';
    if (batch && typeof path[0] === 'number') requestId = requestIdOf(path.shift() as number);
    collector.add(requestId, codeOf(issue), path.map(String).join('.'), issue.message);
  }
  return collector.toError() ?? ValidationError.single('InvalidValue', '', 'Request validation failed');
}
