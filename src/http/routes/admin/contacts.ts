import express, { type Router } from 'express';
import { z } from 'zod';
import { searchDirectory } from '../../../admin/contacts.js';
import { sendProblem } from '../../problem.js';
import type { AdminDeps } from './index.js';
import type { RequireScope } from './require-scope.js';

const querySchema = z.object({
  q: z.string({ error: 'q is required: a user id, a contact id, a name or a phone' }).trim().min(1, 'q must not be empty').max(100, 'q is at most 100 characters'),
});

/** The contact directory: who a user is in amoCRM, found by id, name or phone. */
export function adminContactsRouter(deps: AdminDeps, requireScope: RequireScope): Router {
  const router = express.Router();

  router.get('/admin/contacts', requireScope('contacts:read'), async (req, res) => {
    const query = querySchema.safeParse(req.query);
    if (!query.success) return sendProblem(res, 400, 'Bad query', query.error.issues.map((i) => i.message).join('; '));
    // The query may be a name or a phone: it is not logged.
    res.json({ items: await searchDirectory(deps.db.kysely, query.data.q) });
  });

  return router;
}
