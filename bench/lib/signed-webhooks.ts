import { Webhook } from 'standardwebhooks';
import type { Order, OrderWebhook } from '../../src/partner/schema.js';

/** One partner webhook as it goes over the wire: signed per Standard Webhooks. */
export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

/**
 * `count` distinct order.created webhooks, each with its own webhook-id (else the inbox
 * would absorb it as a redelivery) and its own order and user, signed now with `secret`.
 * The bare baseline is sent exactly these bytes too.
 */
export function signedOrderWebhooks(count: number, options: { secret: string; prefix: string; now?: Date }): SignedRequest[] {
  const signer = new Webhook(options.secret);
  const now = options.now ?? new Date();
  const iso = now.toISOString();
  const out = new Array<SignedRequest>(count);
  for (let i = 0; i < count; i++) {
    const order: Order = {
      id: `${options.prefix}-o${i}`,
      userId: `${options.prefix}-u${i}`,
      serviceId: 'trial-lesson',
      status: 'on_approval',
      cost: null,
      paid: false,
      subscriptionStatus: null,
      customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: `+7903${String(i % 10_000_000).padStart(7, '0')}` },
      additionalInfo: null,
      createdAt: iso,
      updatedAt: iso,
    };
    const event: OrderWebhook = { type: 'order.created', timestamp: iso, data: order };
    const body = JSON.stringify(event);
    const id = `msg_${options.prefix}_${i}`;
    out[i] = {
      body,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signer.sign(id, now, body),
      },
    };
  }
  return out;
}
