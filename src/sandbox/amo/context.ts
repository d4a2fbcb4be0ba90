import type { Request } from 'express';
import type { z } from 'zod';
import { ValidationError, zodToValidationError } from './problem.js';
import type { AmoState, LeadChange } from './state.js';
import type { WebhookDispatcher, WebhookShape } from './webhooks.js';

/** What the route modules share. */
export interface SimContext {
  state: AmoState;
  dispatcher: WebhookDispatcher;
  /** Whether lead writes through the API fire webhooks too (real amoCRM does). */
  apiChangesFireWebhooks: boolean;
  webhookShape: WebhookShape;
}

/** Fires webhooks for lead writes made through the API, without holding up the answer. */
export function fireForApiChanges(ctx: SimContext, changes: LeadChange[]): void {
  if (!ctx.apiChangesFireWebhooks || changes.length === 0) return;
  void ctx.dispatcher.fire(changes, { shape: ctx.webhookShape }).catch(() => undefined);
}

/**
 * Validates a batch body: a JSON array of 1..max items. Zod issues become amoCRM's
 * `validation-errors`, each under the item's request_id (given, or its index).
 */
export function parseBatch<S extends z.ZodType>(req: Request, schema: S, max: number): Array<z.output<S>> {
  const body: unknown = req.body;
  if (!Array.isArray(body)) {
    throw ValidationError.single('InvalidType', '', 'The request body must be a JSON array.');
  }
  if (body.length === 0) throw ValidationError.single('NotBlank', '', 'The request body must not be empty.');
  if (body.length > max) {
    throw ValidationError.single('OutOfRange', '', `No more than ${max} items may be sent at once.`);
  }
  const requestIdOf = (i: number): string => {
    const item: unknown = body[i];
    if (typeof item === 'object' && item !== null && 'request_id' in item) {
      const rid = (item as { request_id: unknown }).request_id;
      if (typeof rid === 'string' || typeof rid === 'number') return String(rid);
    }
    return String(i);
  };
  const items: Array<z.output<S>> = [];
  const issues: z.ZodError[] = [];
  body.forEach((item, i) => {
    const parsed = schema.safeParse(item);
    if (parsed.success) items.push(parsed.data);
    else {
      for (const issue of parsed.error.issues) issue.path.unshift(i);
      issues.push(parsed.error);
    }
  });
  if (issues.length) {
    const merged = issues[0] as z.ZodError;
    for (const other of issues.slice(1)) merged.issues.push(...other.issues);
    throw zodToValidationError(merged, requestIdOf);
  }
  return items;
}

/** Validates a single-object body (PATCH /…/:id, POST /webhooks). */
export function parseObject<S extends z.ZodType>(req: Request, schema: S): z.output<S> {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw ValidationError.single('InvalidType', '', 'The request body must be a JSON object.');
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw zodToValidationError(parsed.error, () => '0', false);
  return parsed.data;
}

/** The request_id to echo for a batch item: the client's own, or its position. */
export function requestIdOf(item: { request_id?: string }, index: number): string {
  return item.request_id ?? String(index);
}
