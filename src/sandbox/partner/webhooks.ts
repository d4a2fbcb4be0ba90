import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Order, OrderWebhook } from '../../partner/schema.js';

export type WebhookType = OrderWebhook['type'];

export interface WebhookDelivery {
  webhookId: string;
  type: string;
  orderId: string;
  /** HTTP status of the bridge's answer; 0 when there was none (no URL, refused, timeout). */
  status: number;
}

export interface SendWebhookOptions {
  /** Reuse an id to replay a delivery (the bridge must de-duplicate it). */
  webhookId?: string;
  /** Forge the signing time (e.g. too old); also used as the body's timestamp. */
  timestamp?: Date;
  /** Sign with another secret (a forged delivery the bridge must refuse). */
  secret?: string;
}

const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Signs and delivers order webhooks per the Standard Webhooks spec. One attempt per
 * call, no automatic retries: tests replay explicitly (same webhookId) when they want a
 * redelivery, and every attempt is logged in `deliveries`.
 */
export class WebhookSender {
  readonly deliveries: WebhookDelivery[] = [];
  url: string | undefined;
  private readonly signer: Webhook;

  constructor(
    secret: string,
    url: string | undefined,
    /** Simulated clock: what the event says happened "now". */
    private readonly clock: () => number,
  ) {
    this.signer = new Webhook(secret); // throws at start-up on a malformed secret
    this.url = url;
  }

  async send(type: WebhookType, order: Order, options: SendWebhookOptions = {}): Promise<{ status: number; body: string }> {
    const webhookId = options.webhookId ?? `msg_${randomUUID()}`;
    // The signature time is the wall clock, not the simulated one: the receiver checks it
    // against its own clock with a 5-minute tolerance, and the simulated clock may be hours ahead.
    const signedAt = options.timestamp ?? new Date();
    const payload: OrderWebhook = {
      type,
      timestamp: (options.timestamp ?? new Date(this.clock())).toISOString(),
      data: order,
    };
    const body = JSON.stringify(payload);
    const signer = options.secret ? new Webhook(options.secret) : this.signer;
    const headers = {
      'content-type': 'application/json; charset=utf-8',
      'webhook-id': webhookId,
      'webhook-timestamp': String(Math.floor(signedAt.getTime() / 1000)),
      'webhook-signature': signer.sign(webhookId, signedAt, body),
    };

    let result: { status: number; body: string };
    if (!this.url) {
      result = { status: 0, body: 'no bridge webhook URL configured' };
    } else {
      try {
        const response = await fetch(this.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        result = { status: response.status, body: await response.text() };
      } catch (error) {
        result = { status: 0, body: error instanceof Error ? error.message : String(error) };
      }
    }
    this.deliveries.push({ webhookId, type, orderId: order.id, status: result.status });
    return result;
  }
}
