import type { ErrorRequestHandler, Response } from 'express';

/**
 * Errors as RFC 9457 problem details (application/problem+json), the format amoCRM
 * itself answers with, so operators read one shape everywhere.
 */
export function sendProblem(res: Response, status: number, title: string, detail?: string, extra: Record<string, unknown> = {}) {
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', title, status, ...(detail ? { detail } : {}), ...extra }));
}

interface BodyParserError {
  type?: string;
  status?: number;
  statusCode?: number;
}

export function problemErrorHandler(onError: (error: unknown) => void): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const e = (typeof error === 'object' && error !== null ? error : {}) as BodyParserError;
    if (e.type === 'entity.too.large') return sendProblem(res, 413, 'Payload Too Large');
    if (e.type === 'entity.parse.failed') return sendProblem(res, 400, 'Malformed body');
    const status = e.status ?? e.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendProblem(res, status, 'Bad Request', String((error as Error).message ?? ''));
    onError(error);
    return sendProblem(res, 500, 'Internal Server Error');
  };
}
