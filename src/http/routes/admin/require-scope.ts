import type { NextFunction, Request, Response } from 'express';
import { type Scope, verifyApiKey } from '../../../admin/api-keys.js';
import type { Db } from '../../../db/connect.js';
import { sendProblem } from '../../problem.js';

/**
 * The guard every admin route starts with: no key or a bad one is 401, a key without the
 * route's own scope is 403. The caller's key id is left in `res.locals.apiKey` for logs.
 */
export function scopeGuard(db: Db) {
  return (scope: Scope) => async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const key = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    const caller = key ? await verifyApiKey(db.kysely, key) : undefined;
    if (!caller) {
      res.set('WWW-Authenticate', 'Bearer realm="amobridge-admin"');
      return sendProblem(res, 401, 'Unauthorized', 'send an admin API key as a Bearer token');
    }
    if (!caller.scopes.has(scope)) return sendProblem(res, 403, 'Forbidden', `this key lacks the scope ${scope}`);
    res.locals.apiKey = caller.id;
    next();
  };
}

export type RequireScope = ReturnType<typeof scopeGuard>;
