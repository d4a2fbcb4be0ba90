import { timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type RequestHandler, type Response, type Router } from 'express';
import type { z } from 'zod';
import { changedOrdersQuerySchema, createOrderRequestSchema, orderPatchSchema, type Order } from '../../partner/schema.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { canonicalJson, IdempotencyStore } from './idempotency.js';
import type { OrderBook } from './orders.js';
import type { WebhookType } from './webhooks.js';

export interface OrdersRouterDeps {
  book: OrderBook;
  /** Called after an API request changed an order (the simulator may echo a webhook). */
  onChange?: (type: WebhookType, order: Order) => void;
}

/** What a successful request answered, remembered under its Idempotency-Key. */
interface StoredAnswer {
  status: number;
  order: Order;
}

/** The Company 1 integration API routes (docs/contracts.md); auth is mounted in front. */
export function ordersRouter({ book, onChange }: OrdersRouterDeps): Router {
  const router = express.Router();
  const idempotency = new IdempotencyStore<StoredAnswer>();

  router.get('/orders/:id', (req, res) => {
    const order = book.get(req.params.id);
    if (!order) return notFound(res, req.params.id);
    res.json(order);
  });

  router.get('/orders', (req, res) => {
    if (CHANGED_ORDERS_PARAMS.some((name) => name in req.query)) return listChanged(book, req.query, res);
    const userId = req.query.userId;
    if (typeof userId !== 'string' || userId === '') {
      res.status(400).json({ error: 'query parameter userId (the orders of a user) or updatedSince (the orders changed since a time) is required' });
      return;
    }
    res.json({ items: book.listByUser(userId) });
  });

  router.post('/orders', (req, res) => {
    const key = requireIdempotencyKey(req.get('idempotency-key'), res);
    if (key === undefined) return;
    const fingerprint = canonicalJson(req.body);
    const seen = idempotency.lookup('POST /orders', key, fingerprint);
    if (seen.kind === 'mismatch') return keyReused(res);
    if (seen.kind === 'replay') {
      // The same order, as it is now (the caller retried after losing the first answer
      // and wants the order's state, not a stale copy); 200 tells it nothing new was made.
      res.status(200).set('Idempotent-Replayed', 'true').json(book.get(seen.value.order.id) ?? seen.value.order);
      return;
    }
    const input = parseBody(createOrderRequestSchema, req.body, res);
    if (!input) return;
    // `comment` is accepted but not part of the Order contract, so it is not stored.
    const order = book.create({
      userId: input.userId,
      serviceId: input.serviceId,
      customer: input.customer,
      ...(input.additionalInfo ? { additionalInfo: input.additionalInfo } : {}),
    });
    idempotency.save('POST /orders', key, fingerprint, { status: 201, order });
    onChange?.('order.created', order);
    res.status(201).json(order);
  });

  router.patch('/orders/:id', (req, res) => {
    const key = requireIdempotencyKey(req.get('idempotency-key'), res);
    if (key === undefined) return;
    // The path is part of the fingerprint: one key used on two orders is a client bug.
    const fingerprint = `${req.params.id}\n${canonicalJson(req.body)}`;
    const seen = idempotency.lookup('PATCH /orders', key, fingerprint);
    if (seen.kind === 'mismatch') return keyReused(res);
    if (seen.kind === 'replay') {
      // The remembered answer, not re-applied: replays must not change anything twice.
      res.status(seen.value.status).set('Idempotent-Replayed', 'true').json(seen.value.order);
      return;
    }
    const patch = parseBody(orderPatchSchema, req.body, res);
    if (!patch) return;
    const outcome = book.patch(req.params.id, patch);
    switch (outcome.kind) {
      case 'not_found':
        return notFound(res, req.params.id);
      case 'conflict':
        res.status(409).json({ error: outcome.error, currentStatus: outcome.currentStatus });
        return;
      case 'ok':
        idempotency.save('PATCH /orders', key, fingerprint, { status: 200, order: outcome.order });
        if (outcome.changed) onChange?.('order.updated', outcome.order);
        res.status(200).json(outcome.order);
    }
  });

  return router;
}

/** Any of these asks for the orders changed since a time rather than a user's orders. */
const CHANGED_ORDERS_PARAMS = ['updatedSince', 'limit', 'cursor'];

/** `GET /orders?updatedSince=…&limit=…&cursor=…` → `{ items, nextCursor }`, ascending by (updatedAt, id). */
function listChanged(book: OrderBook, query: unknown, res: Response): void {
  const parsed = changedOrdersQuerySchema.safeParse(query);
  if (!parsed.success) {
    res.status(400).json({ error: `invalid query: ${parsed.error.issues.map((issue) => issue.message).join('; ')}` });
    return;
  }
  const { updatedSince, limit, cursor } = parsed.data;
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  if (cursor !== undefined && !after) {
    res.status(400).json({ error: 'invalid query: cursor is not one this API issued; pass nextCursor from a previous page as is' });
    return;
  }
  const page = book.listChangedSince(Date.parse(updatedSince), after, limit);
  const last = page.items.at(-1);
  res.json({
    items: page.items,
    nextCursor: page.more && last ? encodeCursor({ updatedAt: Date.parse(last.updatedAt), id: last.id }) : null,
  });
}

/** Bearer token check; constant-time so the simulator does not teach bad habits. */
export function requireBearer(token: string): RequestHandler {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req, res, next) => {
    const given = Buffer.from(req.get('authorization') ?? '');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'missing or invalid bearer token' });
  };
}

/** JSON answers for what Express would otherwise answer in HTML (bad JSON, unknown route). */
export const notFoundHandler: RequestHandler = (req, res) => {
  res.status(404).json({ error: `no route ${req.method} ${req.path}` });
};

export const errorHandler: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
  const status = httpStatusOf(error);
  if (status >= 400 && status < 500) {
    res.status(status).json({ error: error instanceof Error ? error.message : 'bad request' });
    return;
  }
  res.status(500).json({ error: 'internal error' });
};

function httpStatusOf(error: unknown): number {
  if (error && typeof error === 'object' && 'status' in error && typeof error.status === 'number') {
    return error.status;
  }
  return 500;
}

function requireIdempotencyKey(value: string | undefined, res: Response): string | undefined {
  if (value && value.length <= 255) return value;
  res.status(400).json({ error: 'header Idempotency-Key is required (1..255 characters)' });
  return undefined;
}

function keyReused(res: Response): void {
  res.status(422).json({ error: 'Idempotency-Key was already used with a different request' });
}

function notFound(res: Response, id: string): void {
  res.status(404).json({ error: `order ${id} not found` });
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown, res: Response): z.infer<S> | undefined {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  res.status(400).json({
    error: 'invalid request body',
    details: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
  });
  return undefined;
}
